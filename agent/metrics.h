/* metrics.h: counters behind GET /metrics (Prometheus text format 0.0.4).
 *
 * Request metrics are keyed by (method, route pattern, status): the pattern,
 * never the raw path, so ids cannot blow up the label space.  Device and
 * claim gauges are computed at scrape time from the inventory and store. */
#pragma once

#include <stddef.h>

#include "agent.h"

int agent_metrics_new(agent_metrics **out);
void agent_metrics_free(agent_metrics *m);
/* route NULL: "unmatched". */
void agent_metrics_request(agent_metrics *m, const char *method, const char *route, int status,
			   double seconds);
/* outcome: "succeeded", "failed", "aborted", "refused", ... (low cardinality). */
void agent_metrics_migration(agent_metrics *m, const char *outcome);
/* Append the request and migration series to a text buffer (open_memstream). */
void agent_metrics_format(agent_metrics *m, FILE *out);
