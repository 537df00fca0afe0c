/* The compiled-in providers. Adding a provider means adding its descriptor here. */

#include <stddef.h>
#include <string.h>

#include "provider.h"

extern const casb_provider casb_provider_github; /* github.c */

static const casb_provider *const providers[] = {
    &casb_provider_github,
    NULL,
};

const casb_provider *casb_provider_find(const char *id)
{
    if (!id)
        return NULL;
    for (size_t i = 0; providers[i]; i++)
        if (strcmp(providers[i]->id, id) == 0)
            return providers[i];
    return NULL;
}

const casb_provider *const *casb_provider_all(void)
{
    return providers;
}
