/* placeholder: symbolize (being written) */
#include "internal.h"
