#ifndef CARDSYNC_CLIBPQ_SHIM_H
#define CARDSYNC_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
