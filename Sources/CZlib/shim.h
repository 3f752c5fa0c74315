// The system's zlib (Debian: zlib1g-dev), the export stream's codec.
#include <zlib.h>
