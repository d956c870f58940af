// PostgreSQL's headers, included by the few extension files that call PostgreSQL directly
// (boundary, spi, actor, module, entry_points). C++ standard headers must come before this one:
// port.h redefines snprintf and friends as macros.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/uuid.h"
}
