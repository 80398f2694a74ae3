/* placeholder: the fnprof command line (being written) */
int main(void) { return 0; }
