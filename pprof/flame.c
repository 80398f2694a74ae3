/* placeholder: flame (being written) */
#include "internal.h"
