#!/usr/bin/env bash
# Plans or applies every customer of examples/tenants (or those named), each in its own workspace as
# deploy.sh does, a bounded number at a time, and ends with one summary.
#
#   fleet.sh plan  [--parallel N] [--json] [CUSTOMER...]
#   fleet.sh apply [--canary K] [--parallel N] [--max-failures F] [--from-plan RUN] [--json] [CUSTOMER...]
#
# plan     a refreshing `terraform plan` per customer (N at a time, default 4); a table of customer,
#          workspace, resources to add/change/destroy, drift (resources changed outside Terraform),
#          schema version before -> after, status and the first lines of any error. Exit status as
#          `terraform plan -detailed-exitcode`: 0 nothing pending, 2 changes pending, 1 errors.
#          Customers with changes keep their saved plan in the run directory, for --from-plan.
# apply    per customer: a refreshing plan; when it has changes, that saved plan is applied; when it
#          has none, the customer is skipped (so re-running after a failure continues where it stopped).
#          The first K customers (--canary, default 0) go first, and the rest start only if all of them
#          succeeded; then N at a time (--parallel, default 1). Once F customers failed
#          (--max-failures, default 1) no new one starts; those running finish. Ends with what was
#          applied, what failed (with the error's first lines) and what was not attempted. Exit 0
#          when every customer is converged, else 1.
#   --from-plan RUN  apply exactly the saved plans of the plan run RUN (a directory, or its name
#          under the runs directory): nothing is re-planned, a customer whose state changed since is
#          refused by Terraform (stale plan), customers without changes or whose plan failed are
#          not applied.
#   --json   the summary as JSON on stdout (the table goes to stderr).
#
# CUSTOMER is a key of customers/<key>.tfvars; without any, every customer, in name order.
# Each run has a directory, FLEET_RUNS_DIR/<UTC time>-<plan|apply> (default fleet-runs/ here, mode
# 0700): per customer plan.log, apply.log, result.json and, in a plan run, the saved plan of a customer
# with changes (plan.tfplan: like every saved plan it holds the customer's passwords; an apply run
# deletes its own once applied), then summary.txt and summary.json. Logs and summaries
# carry no password: Terraform prints sensitive values as (sensitive value).
#
# One fleet run at a time: a second one is refused (lock file .fleet.lock, held while the run lasts).
# Ctrl-C (SIGINT or SIGTERM): no new customer starts; the running ones finish and the summary is
# printed. A second Ctrl-C passes the interrupt on to the running terraform processes, which stop as
# on their own Ctrl-C: the resource change in flight finishes (a migration runs to its end), no other
# starts, and the customer is reported failed ("execution halted") though that change was made. A third
# makes them exit at once (Terraform warns that data may be lost; a migration cut off that way is rolled
# back); the summary is printed either way, and a re-run continues.
#
# Environment: TERRAFORM (default terraform); PG* for the server, as the provider reads them;
# FLEET_RUNS_DIR; USUALSTORE_LOCK_TIMEOUT (default 60s, a customer's state lock held by someone else).
# Needs bash 5.1 or later, jq, and flock and setsid (util-linux).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
TF="${TERRAFORM:-terraform}"
# shellcheck source=SCRIPTDIR/lib/customer.sh
. "$HERE/lib/customer.sh"
cd "$HERE"

die() {
    printf 'fleet: %s\n' "$*" >&2
    exit 1
}

say() { printf 'fleet: %s\n' "$*" >&2; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------------------------------------------
# One customer (run by the main process as `fleet.sh __worker ...` in a session of its own, so that
# Ctrl-C on the terminal reaches the main process only).

# error_lines LOG: the first error of a Terraform log: its summary line and the first lines of its
# detail (Terraform puts the location, indented, between them), colours and box drawing removed
# (Terraform 1.0.3 colours some errors despite -no-color).
error_lines() {
    sed -e $'s/\033\\[[0-9;]*m//g' -e 's/^[│╷╵] \{0,1\}//' -e 's/^[╷╵]$//' "$1" | awk '
        state == 0 && /^Error: / { print; state = 1; next }
        state == 1 && (NF == 0 || /^[[:space:]]/) { next }
        state == 1 { state = 2 }
        state == 2 && NF == 0 { exit }
        state == 2 { print; if (++n == 3) exit }'
}

# plan_facts PLANFILE: add change destroy drift schema_before schema_after, from `terraform show
# -json` of the saved plan. The JSON holds sensitive values; only these numbers leave the pipe.
plan_facts() {
    tf_customer "$customer" show -json "$1" | jq -r '
        def versions(f): [.resource_changes[]? | select(.type == "usualstore_tenant") | .change | f
            | if . == null then "-" else tostring end] | unique | join(",");
        [ ([.resource_changes[]? | .change.actions | select(index("create"))] | length),
          ([.resource_changes[]? | .change.actions | select(index("update"))] | length),
          ([.resource_changes[]? | .change.actions | select(index("delete"))] | length),
          (.resource_drift // [] | length | tostring),
          versions(.before.schema_version), versions(.after.schema_version) ]
        | map(if . == "" then "-" else tostring end) | join(" ")'
}

# text_facts PLAN_LOG: add change destroy drift, from the text of `terraform plan -no-color` ("Plan: 1 to
# add, 2 to change, 0 to destroy."; drifted resources listed as "# ADDRESS has changed" or "has been
# deleted" under "Objects have changed outside of Terraform"), as Terraform 1.0 to 1.11 print them.
text_facts() {
    awk '
        /^Plan: / {
            for (i = 2; i <= NF; i++) {
                if ($(i + 1) == "to" && $(i + 2) ~ /^add/) add = $i + 0
                if ($(i + 1) == "to" && $(i + 2) ~ /^change/) change = $i + 0
                if ($(i + 1) == "to" && $(i + 2) ~ /^destroy/) destroy = $i + 0
            }
        }
        /changed outside of Terraform/ { in_drift = 1 }
        in_drift && /^(Unless you have made|Terraform used the selected|Terraform will perform|─)/ { in_drift = 0 }
        in_drift && /^  # .* has (been )?(changed|deleted)$/ { drift++ }
        END { printf "%d %d %d %d\n", add, change, destroy, drift }' "$1"
}

# state_schema: the schema version of each of the customer's tenants in its state, as plan_facts
# prints versions; only with the local backend (the state a file in terraform.tfstate.d), else fails.
state_schema() {
    local state="terraform.tfstate.d/$customer/terraform.tfstate"
    [[ ! -f .terraform/terraform.tfstate && -f "$state" ]] || return 1
    jq -r '[.resources[]? | select(.type == "usualstore_tenant") | .instances[].attributes.schema_version
        | tostring] | unique | join(",") | if . == "" then "-" else . end' "$state"
}

# shown_state_schema: as state_schema, for any backend: from `terraform show -json` of the customer's
# current state (a terraform start, so only where the state file cannot be read). The JSON holds
# sensitive values; only the versions leave the pipe.
shown_state_schema() {
    tf_customer "$customer" show -json | jq -r '[.. | objects | select(.type? == "usualstore_tenant")
        | .values.schema_version | tostring] | unique | join(",") | if . == "" then "-" else . end'
}

# elapsed START: seconds since START (an $EPOCHREALTIME), one decimal.
elapsed() {
    local now="$EPOCHREALTIME" us
    # Microseconds; the radix character is the locale's.
    us=$((10#${now//[.,]/} - 10#${1//[.,]/} + 50000))
    printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

# write_result STATUS [ERROR_LOG]: the customer's result.json.
write_result() {
    local status="$1" log="${2:-}" error=""
    [[ -n "$log" ]] && error="$(error_lines "$log")"
    [[ -n "$log" && -z "$error" ]] && error="$(sed $'s/\033\\[[0-9;]*m//g' "$log" | grep -v '^[[:space:]]*$' | tail -n 3)"
    jq -n --arg customer "$customer" --arg status "$status" --arg error "$error" \
        --arg add "$add" --arg change "$change" --arg destroy "$destroy" --arg drift "$drift" \
        --arg before "$schema_before" --arg after "$schema_after" \
        --arg plan_s "$plan_s" --arg show_s "$show_s" --arg apply_s "$apply_s" \
        --argjson seconds "$(elapsed "$started")" '{
            customer: $customer, workspace: $customer, status: $status,
            add: ($add | tonumber? // null), change: ($change | tonumber? // null),
            destroy: ($destroy | tonumber? // null), drift: ($drift | tonumber? // null),
            schema_before: $before, schema_after: $after, seconds: $seconds,
            phases: {plan: ($plan_s | tonumber? // null), show: ($show_s | tonumber? // null),
                apply: ($apply_s | tonumber? // null)},
            error: (if $error == "" then null else $error end) }' >"$dir/result.json"
}

# worker MODE RUN CUSTOMER [SAVED_PLAN]: MODE plan, apply or apply-plan.
worker() {
    local mode="$1" run="$2" saved="${4:-}" code=0 facts phase after
    customer="$3"
    dir="$run/$customer"
    started=$EPOCHREALTIME
    add="" change="" destroy="" drift="" schema_before="" schema_after="" plan_s="" show_s="" apply_s=""
    # A handler rather than ignoring: terraform, started from here, keeps its own Ctrl-C handling.
    trap ':' INT TERM

    if [[ "$mode" != apply-plan ]]; then
        customer_var_files "$customer" || { printf 'no customers/%s.tfvars\n' "$customer" >"$dir/plan.log"; write_result error "$dir/plan.log"; return; }
        saved="$dir/plan.tfplan"
        phase=$EPOCHREALTIME
        tf_customer "$customer" plan -input=false -no-color -detailed-exitcode -lock-timeout="$LOCK_TIMEOUT" \
            -out="$saved" "${CUSTOMER_VAR_FILES[@]}" >"$dir/plan.log" 2>&1 || code=$?
        plan_s="$(elapsed "$phase")"
        if ((code == 1 || code > 2)); then
            rm -f "$saved"
            write_result "$([[ $mode == plan ]] && echo error || echo failed)" "$dir/plan.log"
            return
        fi
    fi
    if ((code == 0)) && [[ "$mode" == apply ]]; then
        # Converged: skipped quickly, without looking into the plan.
        rm -f "$saved"
        write_result unchanged
        return
    fi
    if ((code == 0)) && [[ "$mode" == plan ]] && schema_before="$(state_schema)"; then
        # Nothing pending: the versions are the state's, and no drift that leads to a change. Saves a
        # `terraform show` per customer, which costs half a plan.
        rm -f "$saved"
        add=0 change=0 destroy=0 drift=0 schema_after="$schema_before"
        write_result "no changes"
        return
    fi
    if [[ "$mode" == apply-plan && -f "$(dirname "$saved")/result.json" ]]; then
        # What the plan run found when it saved this plan.
        facts="$(jq -r '[.add, .change, .destroy, .drift, .schema_before, .schema_after]
            | map(if . == null or . == "" then "-" else tostring end) | join(" ")' "$(dirname "$saved")/result.json")"
    elif [[ "$mode" == apply ]] && schema_before="$(state_schema)"; then
        # Read from the plan's text and the state file; the version after is the state's once applied.
        # Saves a `terraform show` per customer in a rollout.
        facts="$(text_facts "$dir/plan.log") $schema_before -"
    else
        phase=$EPOCHREALTIME
        if ! facts="$(plan_facts "$saved" 2>"$dir/show.log")"; then
            write_result "$([[ $mode == plan ]] && echo error || echo failed)" "$dir/show.log"
            return
        fi
        show_s="$(elapsed "$phase")"
    fi
    read -r add change destroy drift schema_before schema_after <<<"$facts"
    if ((code == 0)) && [[ "$mode" != apply-plan ]]; then
        rm -f "$saved"
        write_result "$([[ $mode == plan ]] && echo "no changes" || echo unchanged)"
        return
    fi
    if [[ "$mode" == plan ]]; then
        write_result changes
        return
    fi
    code=0
    phase=$EPOCHREALTIME
    tf_customer "$customer" apply -input=false -no-color -lock-timeout="$LOCK_TIMEOUT" "$saved" \
        >"$dir/apply.log" 2>&1 || code=$?
    apply_s="$(elapsed "$phase")"
    # Applied or not, this run's plan is spent; it holds the customer's passwords.
    [[ "$mode" == apply ]] && rm -f "$saved"
    # The version after is the state's: the plan's is what was meant, not what a failed apply left.
    if after="$(state_schema)" || after="$(shown_state_schema 2>>"$dir/show.log")"; then
        schema_after="$after"
    fi
    if ((code == 0)); then
        write_result applied
    else
        write_result failed "$dir/apply.log"
    fi
}

if [[ "${1:-}" == __worker ]]; then
    shift
    worker "$@"
    exit 0
fi

# ---------------------------------------------------------------------------------------------------
# Options

[[ $# -ge 1 ]] || { usage >&2; exit 1; }
command="$1"
shift
case "$command" in
-h | --help | help)
    usage
    exit 0
    ;;
plan | apply) ;;
*) die "unknown command '$command' (plan or apply; see --help)" ;;
esac

parallel=""
canary=0
max_failures=1
from_plan=""
json=false
named=()

number() { # OPTION VALUE MIN
    if ! [[ "$2" =~ ^[0-9]+$ ]] || (($2 < $3)); then
        die "$1 needs a whole number >= $3, not '$2'"
    fi
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --parallel | --canary | --max-failures | --from-plan)
        [[ $# -ge 2 ]] || die "$1 needs a value"
        if [[ "$command" == plan && "$1" != --parallel ]]; then
            die "$1 is an option of fleet.sh apply, not of plan"
        fi
        case "$1" in
        --parallel) number "$1" "$2" 1 && parallel="$2" ;;
        --canary) number "$1" "$2" 0 && canary="$2" ;;
        --max-failures) number "$1" "$2" 1 && max_failures="$2" ;;
        --from-plan) from_plan="$2" ;;
        esac
        shift
        ;;
    --json) json=true ;;
    -h | --help)
        usage
        exit 0
        ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *)
        valid_customer_key "$1" || die "'$1' is not a customer key (lowercase letters, digits, _)"
        named+=("$1")
        ;;
    esac
    shift
done
if [[ -z "$parallel" ]]; then
    if [[ "$command" == plan ]]; then parallel=4; else parallel=1; fi
fi

if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
    die "needs bash 5.1 or later (wait -n -p), not $BASH_VERSION"
fi
command -v jq >/dev/null || die "needs jq (apt-get install jq)"
command -v flock >/dev/null || die "needs flock (util-linux)"
command -v setsid >/dev/null || die "needs setsid (util-linux)"
command -v "$TF" >/dev/null || die "no terraform binary '$TF' (set TERRAFORM)"

RUNS_DIR="${FLEET_RUNS_DIR:-$HERE/fleet-runs}"

# The customers, in order; with --from-plan, those of the plan run.
customers=()
if [[ -n "$from_plan" ]]; then
    plan_run="$from_plan"
    [[ -d "$plan_run" ]] || plan_run="$RUNS_DIR/$from_plan"
    [[ -f "$plan_run/run.json" ]] || die "--from-plan: '$from_plan' is not a fleet run (no $from_plan/run.json, nor in $RUNS_DIR)"
    plan_run="$(cd "$plan_run" && pwd)"
    [[ "$(jq -r .command "$plan_run/run.json")" == plan ]] || die "--from-plan: $plan_run is not a plan run"
    mapfile -t planned < <(jq -r '.customers[]' "$plan_run/run.json")
    if ((${#named[@]} > 0)); then
        for key in "${named[@]}"; do
            printf '%s\n' "${planned[@]}" | grep -qxF "$key" || die "--from-plan: customer '$key' is not in the plan run $plan_run"
        done
        customers=("${named[@]}")
    else
        customers=("${planned[@]}")
    fi
else
    if ((${#named[@]} > 0)); then
        for key in "${named[@]}"; do
            [[ -f "customers/$key.tfvars" ]] || die "unknown customer '$key': no customers/$key.tfvars (add-customer.sh adds one)"
        done
        customers=("${named[@]}")
    else
        mapfile -t customers < <(all_customers)
    fi
fi
((${#customers[@]} > 0)) || die "no customers: customers/ holds no <key>.tfvars (add-customer.sh adds one)"
# Named twice: once is enough.
mapfile -t customers < <(printf '%s\n' "${customers[@]}" | awk '!seen[$0]++')

# ---------------------------------------------------------------------------------------------------
# One fleet run at a time. flock releases the lock when this process (and the workers, which inherit
# it) exit, however they exit.

exec 9>>.fleet.lock
if ! flock -n 9; then
    die "another fleet run holds $HERE/.fleet.lock ($(head -n 1 .fleet.lock 2>/dev/null)); wait for it to finish"
fi
printf 'pid %s: fleet.sh %s since %s\n' "$$" "$command" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >.fleet.lock

umask 077
mkdir -p "$RUNS_DIR"
base="$RUNS_DIR/$(date -u +%Y%m%dT%H%M%SZ)-$command"
run="$base"
n=1
until mkdir "$run" 2>/dev/null; do
    n=$((n + 1))
    ((n <= 100)) || die "cannot create a run directory $base under $RUNS_DIR"
    run="$base-$n"
done
for key in "${customers[@]}"; do mkdir -p "$run/$key"; done
jq -n --arg command "$command" --arg from "${plan_run:-}" --argjson parallel "$parallel" \
    --argjson canary "$canary" --argjson max_failures "$max_failures" \
    --arg started "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '$ARGS.named + {customers: $ARGS.positional}' \
    --args "${customers[@]}" >"$run/run.json"
say "$command of ${#customers[@]} customer(s), $parallel at a time; run directory $run"

# The configuration is initialised once, and each new customer's workspace created, before any
# customer starts: workers only plan and apply.
if [[ -z "$from_plan" ]]; then
    ensure_init -no-color || die "terraform init failed"
    remember_workspaces || die "cannot list the workspaces of the backend"
    for key in "${customers[@]}"; do
        ensure_workspace "$key" || die "cannot create the workspace of customer '$key'"
    done
else
    ensure_init -no-color || die "terraform init failed"
fi

# ---------------------------------------------------------------------------------------------------
# Scheduling

declare -A running=() # pid -> customer
failures=0
stopping=false
interrupted=false
stop_reason=""
declare -A outcome=() # customer -> status

# The first Ctrl-C stops new starts; every later one goes on to the running terraform processes, as
# Ctrl-C on their own terminal would: Terraform's first interrupt stops it gracefully (the resource
# change in flight finishes), its second makes it exit at once.
# Every return says 0: a bare `return` in a trap handler returns the status of the command the signal
# interrupted (`wait`, 130), and set -e would end fleet.sh itself, without its summary.
# shellcheck disable=SC2317 # called by the trap
on_signal() {
    if $stopping; then
        ((${#running[@]} > 0)) || return 0
        if $interrupted; then
            say "interrupting the ${#running[@]} running terraform command(s) again: Terraform exits at once"
        else
            say "interrupting the ${#running[@]} running terraform command(s): the changes in flight finish (Ctrl-C again makes Terraform exit at once)"
        fi
        interrupted=true
        local pid
        for pid in "${!running[@]}"; do kill -INT -- "-$pid" 2>/dev/null || true; done
        return 0
    fi
    stopping=true
    stop_reason="interrupted by a signal"
    say "stopping: no new customer starts; waiting for the ${#running[@]} running (Ctrl-C again interrupts them)"
}
trap on_signal INT TERM

start() {
    local key="$1" mode
    case "$command" in
    plan) mode=plan ;;
    apply) mode="$([[ -n "$from_plan" ]] && echo apply-plan || echo apply)" ;;
    esac
    if [[ "$mode" == apply-plan ]]; then
        local planned_status
        planned_status="$(jq -r .status "$plan_run/$key/result.json" 2>/dev/null || echo missing)"
        case "$planned_status" in
        changes) ;;
        "no changes")
            jq -n --arg c "$key" '{customer: $c, workspace: $c, status: "unchanged", error: null}' >"$run/$key/result.json"
            outcome[$key]=unchanged
            return
            ;;
        *)
            jq -n --arg c "$key" --arg e "no saved plan to apply: its plan in $(basename "$plan_run") ended with '$planned_status'" \
                '{customer: $c, workspace: $c, status: "not attempted", error: $e}' >"$run/$key/result.json"
            outcome[$key]="not attempted"
            return
            ;;
        esac
        setsid "$SELF" __worker "$mode" "$run" "$key" "$plan_run/$key/plan.tfplan" >"$run/$key/worker.log" 2>&1 &
    else
        setsid "$SELF" __worker "$mode" "$run" "$key" >"$run/$key/worker.log" 2>&1 &
    fi
    running[$!]="$key"
}

# Waits for one worker to end and records its outcome.
reap() {
    local pid="" key status seconds
    # A signal ends the wait early, with pid unset: the caller waits again.
    wait -n -p pid "${!running[@]}" || true
    [[ -n "${pid:-}" && -n "${running[$pid]+set}" ]] || return 0
    key="${running[$pid]}"
    unset "running[$pid]"
    if [[ ! -f "$run/$key/result.json" ]]; then
        jq -n --arg c "$key" --arg e "the worker ended without a result; see $run/$key/worker.log" \
            '{customer: $c, workspace: $c, status: "failed", error: $e}' >"$run/$key/result.json"
    fi
    IFS=$'\t' read -r status seconds < <(jq -r '[.status, (.seconds // "?" | tostring)] | @tsv' "$run/$key/result.json")
    outcome[$key]="$status"
    case "$status" in
    failed | error) failures=$((failures + 1)) ;;
    esac
    say "$key: $status ($seconds s)"
}

# run_wave WIDTH CUSTOMER...: starts them WIDTH at a time; stops starting once told to.
run_wave() {
    local width="$1" key
    shift
    for key in "$@"; do
        while ((${#running[@]} >= width)); do reap; done
        if [[ "$command" == apply ]] && ((failures >= max_failures)) && ! $stopping; then
            stopping=true
            stop_reason="$failures failed, --max-failures $max_failures"
        fi
        $stopping && break
        start "$key"
    done
    while ((${#running[@]} > 0)); do reap; done
}

canaries=()
rest=("${customers[@]}")
if [[ "$command" == apply ]] && ((canary > 0)); then
    canaries=("${customers[@]:0:canary}")
    rest=("${customers[@]:canary}")
fi
if ((${#canaries[@]} > 0)); then
    say "canary: ${canaries[*]}"
    run_wave "$parallel" "${canaries[@]}"
    for key in "${canaries[@]}"; do
        case "${outcome[$key]:-}" in
        failed | error | "not attempted" | "")
            if ! $stopping; then
                say "the canary $key did not succeed: no other customer starts"
                stopping=true
                stop_reason="the canary $key did not succeed"
            fi
            ;;
        esac
    done
fi
run_wave "$parallel" "${rest[@]}"

# ---------------------------------------------------------------------------------------------------
# Summary

for key in "${customers[@]}"; do
    if [[ ! -f "$run/$key/result.json" ]]; then
        jq -n --arg c "$key" '{customer: $c, workspace: $c, status: "not attempted", error: null}' >"$run/$key/result.json"
    fi
done
for key in "${customers[@]}"; do cat "$run/$key/result.json"; done |
    jq -s --arg command "$command" --arg run "$run" --arg stopped "$stop_reason" '{
        command: $command, run: $run, stopped: (if $stopped == "" then null else $stopped end), customers: .,
        totals: (reduce .[] as $c ({}; .[$c.status] += 1)) }' >"$run/summary.json"

# Columns of tab-separated lines, padded to the widest cell (the last one left as it is).
align() {
    awk -F '\t' '{ line[NR] = $0; for (i = 1; i <= NF; i++) if (length($i) > w[i]) w[i] = length($i) }
        END { for (r = 1; r <= NR; r++) { n = split(line[r], cell, "\t"); out = ""
            for (i = 1; i < n; i++) out = out sprintf("%-" w[i] + 2 "s", cell[i]); print out cell[n] } }'
}

table() {
    jq -r '
        def n: if . == null then "-" else tostring end;
        (["CUSTOMER", "WORKSPACE", "ADD", "CHANGE", "DESTROY", "DRIFT", "SCHEMA", "STATUS", "SECONDS"] | @tsv),
        (.customers[] | [.customer, .workspace, (.add | n), (.change | n), (.destroy | n), (.drift | n),
            (if (.schema_before // "") == "" then "-" elif .schema_before == "-" then "new->\(.schema_after)" else "\(.schema_before)->\(.schema_after)" end),
            .status, (.seconds | n)] | @tsv)' "$run/summary.json" | align
    jq -r '.customers[] | select(.error != null) | "\n\(.customer): \(.status)\n" + (.error | split("\n") | map("    " + .) | join("\n"))' \
        "$run/summary.json"
    if [[ "$command" == apply ]]; then
        jq -r '
            def names(s): [.customers[] | select(.status == s) | .customer]
                | "\(s) (\(length))" + (if length > 0 then ": " + join(" ") else "" end);
            "", names("applied"), names("unchanged"), names("failed"), names("not attempted")' \
            "$run/summary.json"
    else
        jq -r '.totals | "\n" + (to_entries | map("\(.key): \(.value)") | join(", "))' "$run/summary.json"
    fi
    jq -r 'select(.stopped != null) | "stopped early: \(.stopped)"' "$run/summary.json"
    printf '\nrun directory: %s\n' "$run"
}
table >"$run/summary.txt"
find "$run" -type f -empty -delete
if $json; then
    cat "$run/summary.txt" >&2
    cat "$run/summary.json"
else
    cat "$run/summary.txt"
fi

errors="$(jq '[.customers[] | select(.status == "error" or .status == "failed" or .status == "not attempted")] | length' "$run/summary.json")"
pending="$(jq '[.customers[] | select(.status == "changes")] | length' "$run/summary.json")"
if ((errors > 0)); then
    exit 1
elif ((pending > 0)); then
    exit 2
fi
exit 0
