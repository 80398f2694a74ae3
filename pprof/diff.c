/* placeholder: diff (being written) */
#include "internal.h"
