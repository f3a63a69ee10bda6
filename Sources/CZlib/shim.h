// zlib for Swift (gzip files from CloudTrail, flow-log and S3 deliveries).
#ifndef VIGIL_CZLIB_SHIM_H
#define VIGIL_CZLIB_SHIM_H
#include <zlib.h>
#endif
