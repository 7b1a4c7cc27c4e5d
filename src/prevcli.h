/* prevcli.h: `ripcord previous-version --service S --environment E [--url URL]
 * [--token-file F]` (token also from RIPCORD_TOKEN; apicli.h) — prints the
 * version to roll back to, asked of a running ripcord's deploy registry: the drop-in for a
 * pipeline's PREVIOUS_VERSION=$(get-previous-version.sh). Exit 0 with the version on stdout;
 * 1 when there is none or the server cannot be asked (reason on stderr); 2 for bad usage. */
#ifndef RC_PREVCLI_H
#define RC_PREVCLI_H

int rc_prevcli_main(int argc, char **argv);

#endif
