"""Attack detection on a request's target (path and query string) and User-Agent.

``classify(target, user_agent)`` returns one :class:`Detection` (type and rule id) or None.
Types, checked in this order so a request is classified once, by its most specific trait:
``xss``, ``command_injection``, ``sql_injection``, ``path_traversal``, ``scanner``.

The target is normalised before matching, the way a server would read it: Nginx's ``\\xHH``
log escapes undone, percent-decoding repeated (double encoding), ``+`` as space, HTML entities
decoded, SQL comments ``/**/`` read as spaces, lower case. All rules run at once as one RE2
set (linear time, no backtracking on hostile input); targets made only of plain URL characters
skip the decoding.
Command words count after a separator a value does not hold in ordinary use, after any
separator for words only a shell knows, or with arguments; newlines survive normalisation.
Detection and false-positive rates on public corpora are in docs/log-detection.md.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

import re2

TYPES = ("xss", "command_injection", "sql_injection", "path_traversal", "scanner")

_SP = r"[\s+]"  # a space after decoding (``+`` is decoded too, this covers ``%2b`` leftovers)

#: Command words for the command injection rules; the strong ones are words a value rarely holds.
_CMD = (
    r"(?:cat|ls|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|ping|nslookup|dig|echo|rm|"
    r"chmod|python[23]?|perl|ruby|php|powershell|cmd|ifconfig|ipconfig|net|netstat|sleep|tftp|"
    r"telnet|read|ps|env|printenv|hostname|systeminfo|dir|ver|type|tasklist|pwd|bin/\w+|"
    r"usr/bin/\w+)"
)
_CMD_STRONG = (
    r"(?:whoami|uname|wget|curl|ncat|netcat|nslookup|powershell|ifconfig|ipconfig|netstat|"
    r"tftp|telnet|systeminfo|bin/\w+|usr/bin/\w+)"
)
_CMD_END = r"(?:\s|$|[;|&`)<>'\"\x00]|\.exe)"

#: (type, rule id, regex) in priority order. Regexes run on the normalised target.
RULES: tuple[tuple[str, str, str], ...] = (
    # -- SQL injection ---------------------------------------------------------------------
    (
        "sql_injection",
        "sqli-union",
        r"\bunion\b[\s(]+(?:all\s+|distinct\s+)?\(*\s*select\b",
    ),
    (
        "sql_injection",
        "sqli-tautology",
        r"(?:(?:^|[\s'\"`)=(])(?:or|and|xor|rlike|having|where|when|not|iif|if)(?:\s+|\s*\()|"
        r"\|\||&&)\(*\s*(?:not\s+)?['\"`]?[\w@.$]*['\"`]?\s*"
        r"(?:=|<>|!=|<=?|>=?|\blike\b|\bis\s+(?:not\s+)?null\b|\brlike\b|\bregexp\b|"
        r"\bbetween\b|\bin\s*\()",
    ),
    (
        "sql_injection",
        "sqli-num-compare",
        r"\(\s*\d+\s*(?:=|<>|<|>)\s*\d+\s*\)|\d+\s*=\s*\d+\s*(?:--|#|/\*)",
    ),
    (
        "sql_injection",
        "sqli-quote-comment",
        r"['\"`)]\s*[\w\s]{0,20}(?:--|#|/\*)|['\"`]\s*;",
    ),
    (
        "sql_injection",
        "sqli-function",
        r"\b(?:sleep|benchmark|pg_sleep|extractvalue|updatexml|load_file|group_concat|"
        r"concat(?:_ws)?|char|chr|ascii|ord|mid|substring|substr|elt|make_set|exp|"
        r"randomblob|utl_inaddr\.get_host_address|dbms_pipe\.receive_message|"
        r"dbms_utility\.sqlid_to_sqlhash|ctxsys\.drithsx\.sn|json_keys|gtid_subset|"
        r"convert|cast|count|iif|if|ifnull|isnull|nullif|coalesce|version|database|"
        r"user|system_user|current_user|schema|regexp_substring|xmltype|"
        r"utl_http\.request|to_timestamp_tz|tz_offset|bfilename)\s*\(.*?(?:\bselect\b|"
        r"\d\s*[,)=]|@@|0x[0-9a-f]|\(|\bfrom\b|'|\bas\b)",
    ),
    ("sql_injection", "sqli-waitfor", r"\bwaitfor\s+(?:delay|time)\b"),
    (
        "sql_injection",
        "sqli-schema",
        r"\b(?:information_schema|mysql\.user|sysobjects|syscolumns|sqlite_master|"
        r"pg_catalog|all_tables|user_tables|xp_cmdshell|sp_executesql|sp_password|"
        r"utl_http|dbms_\w+|rdb\$\w+)\b|@@\w+|\bexec(?:ute)?\s+(?:xp|sp)_?\w*",
    ),
    ("sql_injection", "sqli-into-file", r"\binto\s+(?:out|dump)file\b"),
    (
        "sql_injection",
        "sqli-stacked",
        r";\s*(?:select|insert|update|delete|drop|create|alter|exec|execute|shutdown|"
        r"declare|truncate|call)\b",
    ),
    (
        "sql_injection",
        "sqli-select",
        r"\(\s*select\b|\bselect\s+(?:\*|null\b|top\s+\d|@@|\d+\s*,|count\s*\(|"
        r"distinct\b)|\bselect\b\s+[\w*@(]+.*?\bfrom\b\s+[\w.`\"\[(]+.*?(?:\bwhere\b|--|#|"
        r"\blimit\b)",
    ),
    (
        "sql_injection",
        "sqli-order-by",
        r"(?:['\")]|\d)\s*\b(?:order|group)\s+by\s+\d+\s*(?:--|#|$|[,)])|"
        r"\bprocedure\s+analyse\b",
    ),
    ("sql_injection", "sqli-case-when", r"\bcase\s+when\b.+?\bthen\b"),
    # -- XSS -------------------------------------------------------------------------------
    ("xss", "xss-script-tag", r"<\s*/?\s*script\b"),
    ("xss", "xss-event-handler", r"(?:<[^>]*|[\"'`/;]\s*|\s)\bon[a-z]{3,20}\s*="),
    ("xss", "xss-js-uri", r"\b(?:java|vb|live)script\s*:|\bdata\s*:\s*text/html"),
    (
        "xss",
        "xss-tag",
        r"<\s*(?:iframe|img|svg|object|embed|body|style|link|meta|base|form|input|frameset|"
        r"frame|applet|marquee|video|audio|details|math|xss|a\s+href|div|table|td|bgsound|"
        r"layer|xml|isindex|br|!\[cdata)\b",
    ),
    (
        "xss",
        "xss-dom",
        r"\b(?:alert|prompt|confirm|eval|settimeout|setinterval)\s*[(`]|document\s*\."
        r"(?:cookie|domain|write|location)|string\s*\.\s*fromcharcode|\bexpression\s*\(|"
        r"window\s*\.\s*location|\.innerhtml",
    ),
    # -- command injection ------------------------------------------------------------------
    # A command word counts after a separator that a value does not hold in ordinary use (at
    # the value's start, doubled, after a number, quote or newline), after any separator when
    # the word is one only a shell knows (whoami, netstat...), or when arguments follow it.
    (
        "command_injection",
        "cmd-chain",
        r"(?:=\s*[;|&`]|\|\||&&|[\n`]|\\n|\$\(|[\d'\")\]]\s*[;|&])\s*" + _CMD + _CMD_END,
    ),
    (
        "command_injection",
        "cmd-chain-strong",
        r"[;|&]\s*(?:" + _CMD_STRONG + _CMD_END + r"|(?:set|env|printenv)(?:$|[;|&`'\"#\x00]))|"
        # time-based blind injection: a delay of some seconds after a separator
        r"[;|&`]\s*(?:sleep|timeout)\s+\d+|[;|&`]\s*ping\s+(?:-[a-z]+\s*\d*\s+)*\d+\.\d+\.",
    ),
    (
        "command_injection",
        "cmd-arguments",
        r"[;|&`(=]\s*" + _CMD + r"\s+(?:-{1,2}[a-z]|/|\.\.?/|~|\$|\d+\s*[;|`]|"
        r"[\w.-]+\.(?:php\d?|pl|cgi|sh|py|txt|conf|ini|log)\b)",
    ),
    ("command_injection", "cmd-null-byte", r"(?:^|[=;|&/])\s*" + _CMD + r"\x00"),
    ("command_injection", "cmd-substitution", r"\$\([^)]{1,200}\)|`[^`]{1,200}`|\$\{ifs\}"),
    (
        "command_injection",
        "cmd-shell-path",
        r"/bin/(?:ba|z|da|k)?sh\b|[;|&`\s=]/(?:usr/)?s?bin/\w+|\bcmd(?:\.exe)?\s*/c\b|"
        r"\bpowershell(?:\.exe)?\b|/usr/bin/(?:id|whoami|wget|curl)\b|\bsystem32\\cmd|"
        r"/(?:usr/(?:local/)?)?s?bin/[\w.-]+(?:$|[\s;|&`<>'\"\x00])",
    ),
    (
        "command_injection",
        "cmd-code-exec",
        r"(?:^|[=;'\"`.({@]\s*)(?:system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec|"
        r"eval|assert|exit|die|phpinfo|base64_decode|file_get_contents|file_put_contents|"
        r"include|require|print|print_r|printf|var_dump|echo|md5|preg_replace|create_function|"
        r"call_user_func)\s*\(|\{\$\{|\$\{\s*@?\s*\w+\s*\(|/[imsxu]*e\x00|\{" + _CMD + r",",
    ),
    # -- path traversal and sensitive file probes -------------------------------------------
    (
        "path_traversal",
        "trav-dotdot",
        r"(?:^|[/\\=])\.\.+(?:[/\\;]|$)|\.\.[/\\]|=\.\.(?:[^.]|$)|\.\.0x(?:2f|5c)\b",
    ),
    (
        "path_traversal",
        "trav-sensitive-file",
        r"/etc/(?:passwd|shadow|group|hosts|issue|motd|fstab|crontab|sudoers)\b|"
        r"\bboot\.ini\b|\bwin\.ini\b|\bsystem\.ini\b|\bwindows[/\\]system32\b|/proc/self/|"
        r"/\.(?:git|svn|hg|bzr)(?:/|$)|/\.env(?:\.|$|/)|/\.htaccess\b|/\.htpasswd\b|"
        r"\bweb\.config\b|\bwp-config\.php|/\.ds_store\b|\bid_[rd]sa\b|/\.ssh/|"
        r"/\.aws/|/\.bash_history\b|\bglobal\.asa\b|/inetpub/|\b[c-e]:[/\\](?:windows|winnt|"
        r"inetpub|boot|program)",
    ),
    ("path_traversal", "trav-null-byte", r"\x00"),
    ("path_traversal", "trav-wrapper", r"\b(?:file|php|phar|zip|expect|glob|jar)://"),
    # -- scanners: probe paths (User-Agents are checked apart) -------------------------------
    (
        "scanner",
        "scan-probe-path",
        r"^/(?:phpmyadmin|pma|myadmin|mysqladmin|wp-login\.php|wp-admin|xmlrpc\.php|"
        r"hnap1|boaform|actuator|solr/admin|jmx-console|invoker/|"
        r"console/login|vendor/phpunit|shell\.php|cmd\.php|eval-stdin\.php|"
        r"\.well-known/security\.txt\.bak|admin\.php|setup\.php|config\.php|"
        r"phpinfo\.php|info\.php|test\.php|sftp-config\.json|server-status|"
        r"manager/html|axis2|webdav|owa/|autodiscover|remote/login|"
        r"struts|druid/index\.html|nacos/)",
    ),
)

_SCANNER_UA = re.compile(
    r"(?i)sqlmap|nikto|nmap|masscan|zgrab|nuclei|acunetix|netsparker|wpscan|dirbuster|"
    r"gobuster|\bdirb\b|wfuzz|w3af|openvas|nessus|burp|zmeu|havij|jorgee|appscan|arachni|"
    r"skipfish|webinspect|feroxbuster|whatweb|fimap|commix|xsstrike|morfeus|"
    r"paros|webshag|vega/|zap/|owasp|pangolin|bsqlbf|hydra|medusa|nessus|qualys|"
    r"censysinspect|expanse|l9explore|fuzz faster|ffuf|python-requests/\d.*scan"
)

_PLAIN = re.compile(r"[A-Za-z0-9/._\-=&?,:~]*\Z")
_HEX = re.compile(r"\\x([0-9A-Fa-f]{2})")
_COMMENT = re.compile(r"/\*.*?\*/")
_PCT_U = re.compile(r"%u([0-9A-Fa-f]{4})")
_OVERLONG_MAP = {
    "%c0%ae": ".",
    "%c0%2e": ".",
    "%e0%80%ae": ".",
    "%c0%af": "/",
    "%c0%2f": "/",
    "%e0%80%af": "/",
    "%c1%9c": "\\",
    "%c0%5c": "\\",
    "%c1%1c": "\\",
}
_OVERLONG_HINT = re.compile(r"%(?:c[01]|e0|u)", re.I)
_OVERLONG = re.compile("|".join(re.escape(k) for k in _OVERLONG_MAP), re.I)
#: Unicode look-alikes that servers (IIS) fold to ASCII path characters.
_LOOKALIKE = str.maketrans(
    {"\uff0e": ".", "\u2215": "/", "\uff0f": "/", "\u2216": "\\", "\uff3c": "\\"}
)
_WS = re.compile(r"\s+")
_ENTITY = re.compile(r"&(?:#|[a-z]{2,8};|(?:lt|gt|quot|amp|apos|nbsp)\b)", re.I)


def _rule_set() -> re2.Set:
    options = re2.Options()
    options.dot_nl = True
    options.max_mem = 64 << 20
    rules = re2.Set.SearchSet(options)
    for _kind, _rule, regex in RULES:
        rules.Add(regex)
    rules.Compile()
    return rules


#: All rules in one RE2 set: one linear-time pass over the text finds every rule that matches.
_RULE_SET = _rule_set()
#: (priority of the rule's type, index) to pick one rule when several match.
_RANK = [(TYPES.index(kind), i) for i, (kind, _, _) in enumerate(RULES)]


@dataclass(frozen=True, slots=True)
class Detection:
    type: str
    rule: str


def _unescape_overlong(text: str) -> str:
    """IIS ``%uXXXX`` escapes and overlong UTF-8 forms of ``. / \\`` to what they stand for."""
    text = _OVERLONG.sub(lambda m: _OVERLONG_MAP[m.group(0).lower()], text)
    return _PCT_U.sub(lambda m: chr(int(m.group(1), 16)), text)


def normalise(target: str) -> str:
    """What the application sees: decoded (twice if need be), lower case, comments as spaces."""
    text = target
    for _ in range(4):
        before = text
        if "\\x" in text:
            text = _HEX.sub(lambda m: chr(int(m.group(1), 16)), text)
        if "%" in text:
            if _OVERLONG_HINT.search(text):
                text = _unescape_overlong(text)
            text = unquote_plus(text, errors="replace")
        elif "+" in text:
            text = text.replace("+", " ")
        if text == before:
            break
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if not text.isascii():
        text = text.translate(_LOOKALIKE)
    text = text.lower()
    if "/*" in text:
        text = _COMMENT.sub(" ", text)
    if "\t" in text or "\n" in text or "\r" in text:
        # Runs of white space as one space, or one newline when they hold one (a shell reads
        # a newline as a command separator).
        return _WS.sub(lambda m: "\n" if "\n" in m.group(0) else " ", text)
    return text


_DEFAULT_UA_CACHE: dict[str, Detection | None] = {}


def classify_user_agent(user_agent: str) -> Detection | None:
    m = _SCANNER_UA.search(user_agent)
    return Detection("scanner", "scan-user-agent") if m else None


def classify_target(target: str) -> Detection | None:
    """The attack type of a request target alone (no User-Agent)."""
    hits = _set_match(target.lower() if _plain(target) else normalise(target))
    if not hits:
        return None
    return _DETECTIONS[min(hits, key=_RANK.__getitem__)]


def classify(
    target: str,
    user_agent: str = "",
    ua_cache: dict[str, Detection | None] | None = None,
    target_cache: dict[str, Detection | None] | None = None,
) -> Detection | None:
    """The one attack type of a request, or None for an ordinary one.

    ``ua_cache`` and ``target_cache`` (bounded dicts owned by the caller) remember verdicts:
    access logs repeat the same User-Agents and, for static files and hot pages, targets.
    """
    if target_cache is not None:
        try:
            found = target_cache[target]
        except KeyError:
            found = classify_target(target)
            if len(target_cache) >= 50_000:
                target_cache.clear()
            target_cache[target] = found
    else:
        found = classify_target(target)
    if found is not None or not user_agent or user_agent == "-":
        return found
    cache = _DEFAULT_UA_CACHE if ua_cache is None else ua_cache
    try:
        return cache[user_agent]
    except KeyError:
        pass
    found = classify_user_agent(user_agent)
    if len(cache) >= 10_000:
        cache.clear()
    cache[user_agent] = found
    return found


_plain = _PLAIN.match


def _raw_set_match(rules: re2.Set):
    """The set's matcher on UTF-8 bytes, without the wrapper's per-call type checks when the
    installed google-re2 exposes it (an empty list means no match either way)."""
    raw = getattr(rules, "_set", None)
    if raw is None or not hasattr(raw, "Match"):
        return rules.Match
    match = raw.Match
    return lambda text: match(text.encode())


_set_match = _raw_set_match(_RULE_SET)
_DETECTIONS = [Detection(kind, rule) for kind, rule, _ in RULES]
