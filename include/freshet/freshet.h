#pragma once
/// Freshet's public API: include this one header.

#include "freshet/configuration.h"
#include "freshet/connectors.h"
#include "freshet/data_stream.h"
#include "freshet/environment.h"
#include "freshet/file_system.h"
#include "freshet/format.h"
#include "freshet/functions.h"
#include "freshet/job_client.h"
#include "freshet/key_groups.h"
#include "freshet/serializer.h"
#include "freshet/sink.h"
#include "freshet/source.h"
#include "freshet/status.h"
#include "freshet/types.h"
