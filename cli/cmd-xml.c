/* cmd-xml.c: the xml verbs of vgpumig (table filled in by its owner). */
#include "cli.h"

const cli_verb cli_xml_verbs[] = {
	{ NULL, NULL, NULL },
};
