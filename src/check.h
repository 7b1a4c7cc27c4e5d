/* check.h: `ripcord check FILE...` — loads rule files the way the daemon would and reports
 * every problem, like `promtool check rules`; for CI in the GitOps repo that holds the rules. */
#ifndef RC_CHECK_H
#define RC_CHECK_H

/* argv[0] is the subcommand's own name ("check"); the rest are options and files.
 * Prints diagnostics ("file:line:col: error: message", also warning:) and one summary line per
 * file to stdout. Returns the exit status: 0 no errors, 1 any error, 2 usage error. */
int rc_check_main(int argc, char **argv);

#endif
