#!/usr/bin/env python3
"""test_secrets.py: literal secrets end to end — `ripcord serve` refuses to start on a config
or a rule file holding one (each finding logged at file:line:col), a reload that brings one
keeps the previous rules, scripts/pre-commit refuses a commit whose staged contents hold one
(and looks at the index, not the work tree), and scripts/secret-scan outside a git checkout.

No secret is written here: the values are drawn at run time (random, seeded) and the known
prefixes are joined from pieces, so the repository scan does not report this file.

usage: test_secrets.py <ripcord-binary> <source-root>
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Runner, expect, expect_eq, request  # noqa: E402

RND = random.Random(7)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def draw(n, alphabet=ALNUM):
    return "".join(RND.choice(alphabet) for _ in range(n))


def slack_url():
    return ("https://hooks.slack" + ".com/services/T" + draw(9, UPPER) + "/B" + draw(9, UPPER)
            + "/" + draw(24))


RULES = """rollback:
  service: checkout
  environment: production
  triggers:
    - metric: error_rate
      threshold: 5%
      window: 1m
  action:
    type: previous_version
"""

MSG = ("literal secret (slack-webhook-url): use an environment variable or a file "
       "(secret_env:/secret_file:, token_env:/token_file:)")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def serve(exe, tmp, *flags):
    return subprocess.run([exe, "serve", "--web.listen-address=127.0.0.1:0",
                           "--storage.path=" + os.path.join(tmp, "data")] + list(flags),
                          capture_output=True, text=True, timeout=30)


def case_config_refuses_start(exe):
    tmp = tempfile.mkdtemp(prefix="rc-secrets-")
    try:
        write(os.path.join(tmp, "app.rollback.yml"), RULES)
        url = slack_url()
        cfg = write(os.path.join(tmp, "ripcord.yml"),
                    "rule_files: ['*.rollback.yml']\n"
                    "receivers:\n"
                    "  - name: chat\n"
                    "    type: slack\n"
                    "    url: " + url + "\n"
                    "identities:\n"
                    "  - name: ci\n"
                    "    roles: [deployer]\n"
                    "    token_env: gl" + "pat-" + draw(20) + "\n")
        p = serve(exe, tmp, "--config.file=" + cfg)
        expect_eq(p.returncode, 1, "serve with literal secrets in its config")
        expect("at=%s:5:10 msg=\"%s\"" % (cfg, MSG) in p.stderr,
               "the webhook URL at 5:10: %r", p.stderr[-1500:])
        expect("at=%s:9:16 msg=\"literal secret (gitlab-token)" % cfg in p.stderr,
               "the token at 9:16: %r", p.stderr[-1500:])
        expect("refusing to start" in p.stderr, "says it refuses: %r", p.stderr[-1500:])
        expect(url[40:] not in p.stderr, "the secret is not logged")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_rule_file_refuses_start(exe):
    tmp = tempfile.mkdtemp(prefix="rc-secrets-")
    try:
        secret = "xox" + "b-" + draw(12, "0123456789") + "-" + draw(24)
        path = write(os.path.join(tmp, "r.yml"), RULES + "# ask " + secret + " in #ops\n")
        p = serve(exe, tmp, "--rules.file=" + path)
        expect_eq(p.returncode, 1, "serve with a literal secret in a rule file")
        expect("at=%s:10:7 msg=\"literal secret (slack-token)" % path in p.stderr,
               "the rule file error at 10:7: %r", p.stderr[-1500:])
        expect(secret[8:] not in p.stderr, "the secret is not logged")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_reload_keeps_rules(exe):
    tmp = tempfile.mkdtemp(prefix="rc-secrets-")
    path = write(os.path.join(tmp, "r.yml"), RULES)
    d = Daemon(exe, ["--rules.file=" + path]).start()
    try:
        write(path, RULES + "# " + slack_url() + "\n")
        r = request(d.port, "POST", "/-/reload")
        expect_eq(r.status, 500, "reload with a literal secret")
        body = r.body.decode()
        expect("previous rules stay" in body and "r.yml:10:3: " + MSG in body,
               "reload names the secret's place: %r", body)
        r = request(d.port, "GET", "/api/v1/rules")
        expect_eq(r.status, 200, "rules still served")
        expect(b"checkout" in r.body, "the previous rule is still loaded")
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def git(repo, *args, check=True, env=None):
    return subprocess.run(["git", "-C", repo] + list(args), capture_output=True, text=True,
                          timeout=60, check=check, env=env)


def case_pre_commit(exe, root):
    tmp = tempfile.mkdtemp(prefix="rc-precommit-")
    env = dict(os.environ, RIPCORD=exe, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    try:
        git(tmp, "init", "-q", env=env)
        hooks = git(tmp, "rev-parse", "--git-path", "hooks", env=env).stdout.strip()
        hooks = os.path.join(tmp, hooks)
        os.makedirs(hooks, exist_ok=True)
        os.symlink(os.path.join(root, "scripts", "pre-commit"), os.path.join(hooks, "pre-commit"))
        write(os.path.join(tmp, "README"), "hello\n")
        git(tmp, "add", "README", env=env)
        git(tmp, "commit", "-qm", "one", env=env)

        key = "api_key: " + draw(32)
        write(os.path.join(tmp, "conf", "app.yml"), "a: 1\n" + key + "\n")
        git(tmp, "add", "conf", env=env)
        p = git(tmp, "commit", "-qm", "two", check=False, env=env)
        expect(p.returncode != 0, "a staged secret refuses the commit")
        expect("conf/app.yml:2:10: high-entropy-value" in p.stdout + p.stderr,
               "the finding at its repository path: %r", p.stdout + p.stderr)
        expect(key[14:] not in p.stdout + p.stderr, "the secret is not printed")

        # The work tree is clean, the index is not: still refused.
        write(os.path.join(tmp, "conf", "app.yml"), "a: 1\n")
        p = git(tmp, "commit", "-qm", "two", check=False, env=env)
        expect(p.returncode != 0, "the staged contents are scanned, not the work tree")

        # A marked fake with a reason passes; without a reason it does not.
        write(os.path.join(tmp, "conf", "app.yml"), key + " # ripcord:allow-secret\n")
        git(tmp, "add", "conf", env=env)
        p = git(tmp, "commit", "-qm", "two", check=False, env=env)
        expect(p.returncode != 0 and "needs a reason" in p.stdout + p.stderr,
               "an allow comment without a reason: %r", p.stdout + p.stderr)
        write(os.path.join(tmp, "conf", "app.yml"),
              key + " # ripcord:allow-secret fake for the docs\n")
        git(tmp, "add", "conf", env=env)
        p = git(tmp, "commit", "-qm", "two", check=False, env=env)
        expect_eq(p.returncode, 0, "a fake with a reason commits: %s" % (p.stdout + p.stderr))

        # A secret only in the work tree (not staged) does not stop a commit of other files.
        write(os.path.join(tmp, "conf", "app.yml"), key + "\n")
        write(os.path.join(tmp, "NOTES"), "notes\n")
        git(tmp, "add", "NOTES", env=env)
        p = git(tmp, "commit", "-qm", "three", check=False, env=env)
        expect_eq(p.returncode, 0, "unstaged secrets are not the hook's business: %s"
                  % (p.stdout + p.stderr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_scan_outside_git(exe, root):
    tmp = tempfile.mkdtemp(prefix="rc-scan-")
    env = dict(os.environ, RIPCORD=exe, GIT_CEILING_DIRECTORIES=os.path.dirname(tmp))
    try:
        write(os.path.join(tmp, "app", "settings.env"), "X=1\nAPI_TOKEN=" + draw(30) + "\n")
        write(os.path.join(tmp, "build", "leftover.env"), "API_TOKEN=" + draw(30) + "\n")
        write(os.path.join(tmp, "app", "clean.yml"), "token_env: API_TOKEN\n")
        with open(os.path.join(tmp, "app", "blob.bin"), "wb") as f:
            f.write(b"\x00\x01API_TOKEN=" + draw(30).encode() + b"\n")
        p = subprocess.run(["bash", os.path.join(root, "scripts", "secret-scan"), tmp],
                           capture_output=True, text=True, timeout=60, env=env)
        expect_eq(p.returncode, 1, "findings: exit 1 (%s)" % p.stdout)
        expect("app/settings.env:2:11: high-entropy-value" in p.stdout, "found: %r", p.stdout)
        expect("leftover" not in p.stdout, "build*/ skipped: %r", p.stdout)
        expect("secrets: 1 finding in 3 files" in p.stdout, "one finding, binary skipped: %r",
               p.stdout)
        p = subprocess.run(["bash", os.path.join(root, "scripts", "secret-scan"),
                            os.path.join(tmp, "app", "clean.yml")],
                           capture_output=True, text=True, timeout=60, env=env)
        expect_eq(p.returncode, 0, "a clean file: exit 0 (%s)" % p.stdout)
        p = subprocess.run(["bash", os.path.join(root, "scripts", "secret-scan"),
                            os.path.join(tmp, "nope")],
                           capture_output=True, text=True, timeout=60, env=env)
        expect_eq(p.returncode, 2, "a missing path: exit 2")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) < 3:
        print("usage: %s <ripcord-binary> <source-root>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    root = os.path.abspath(sys.argv[2])
    r = Runner("test_secrets")
    t0 = time.monotonic()
    r.run("serve refuses a config with literal secrets, each logged", case_config_refuses_start,
          exe)
    r.run("serve refuses a rule file with a literal secret", case_rule_file_refuses_start, exe)
    r.run("a reload that brings a secret keeps the previous rules", case_reload_keeps_rules, exe)
    if shutil.which("git"):
        r.run("pre-commit: staged contents, allow comment, unstaged files", case_pre_commit,
              exe, root)
    else:
        r.fail_setup("pre-commit", "git is not installed")
    r.run("secret-scan outside git: find, build*/ and binaries skipped, exit codes",
          case_scan_outside_git, exe, root)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t0))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
