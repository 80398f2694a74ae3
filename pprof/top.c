/* placeholder: top (being written) */
#include "internal.h"
