/* placeholder: merge (being written) */
#include "internal.h"
