/* placeholder: folded (being written) */
#include "internal.h"
