/* cmd-agent.c: the agent verbs of vgpumig (table filled in by its owner). */
#include "cli.h"

const cli_verb cli_agent_verbs[] = {
	{ NULL, NULL, NULL },
};
