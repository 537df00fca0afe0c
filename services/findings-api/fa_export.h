#ifndef FA_EXPORT_H
#define FA_EXPORT_H

#include "casb/http_server.h"

/* Registers the export routes (the server's app is an fa_app). 0 or -1. */
int fa_export_register(casb_http_server *s);

#endif
