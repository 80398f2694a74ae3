/* placeholder: stacks (being written) */
#include "internal.h"
