#ifndef FA_TRIAGE_H
#define FA_TRIAGE_H

#include "casb/http_server.h"

/* Registers the triage routes (the server's app is an fa_app). 0 or -1. */
int fa_triage_register(casb_http_server *s);

#endif
