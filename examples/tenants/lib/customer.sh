# Sourced by deploy.sh and fleet.sh: how Terraform runs for one customer of examples/tenants. One
# place for the customer key's rule, the var-files (the secrets file when there is one), the
# customer's workspace (selected through TF_WORKSPACE, so the directory's selected workspace never
# changes and several customers can run at once), init once per configuration, and waiting for locks.
#
# The sourcing script sets HERE (examples/tenants) and TF (the terraform binary) and cds to HERE.
# Environment: USUALSTORE_LOCK_TIMEOUT (default 60s): how long a command waits for a customer's state
# lock held by another run before it fails.
# shellcheck shell=bash

# shellcheck disable=SC2034 # read by the scripts that source this file
LOCK_TIMEOUT="${USUALSTORE_LOCK_TIMEOUT:-60s}"
# Terraform asks checkpoint.hashicorp.com for news on every start unless told not to.
export CHECKPOINT_DISABLE="${CHECKPOINT_DISABLE:-1}"

# valid_customer_key KEY: the rule add-customer.sh's keys follow (the database name).
valid_customer_key() {
    [[ "$1" =~ ^[a-z_][a-z0-9_]{0,52}$ ]]
}

# customer_var_files KEY: sets CUSTOMER_VAR_FILES to the -var-file options of the customer (its
# .tfvars, and its .secrets.tfvars when it exists). Returns 1 when the customer has no .tfvars.
customer_var_files() {
    CUSTOMER_VAR_FILES=()
    [[ -f "customers/$1.tfvars" ]] || return 1
    CUSTOMER_VAR_FILES=("-var-file=customers/$1.tfvars")
    if [[ -f "customers/$1.secrets.tfvars" ]]; then
        CUSTOMER_VAR_FILES+=("-var-file=customers/$1.secrets.tfvars")
    fi
    return 0
}

# The customers that have a file, one key a line, sorted.
all_customers() {
    local file key
    for file in customers/*.tfvars; do
        [[ -f "$file" ]] || continue
        [[ "$file" == *.secrets.tfvars ]] && continue
        key="${file#customers/}"
        printf '%s\n' "${key%.tfvars}"
    done | LC_ALL=C sort
}

# tf_customer KEY ARGS...: terraform in the customer's workspace.
tf_customer() {
    local key="$1"
    shift
    TF_WORKSPACE="$key" "$TF" "$@"
}

# tf_default ARGS...: terraform outside any customer's workspace.
tf_default() { env -u TF_WORKSPACE "$TF" "$@"; }

# ensure_init [TERRAFORM_INIT_OPTIONS...]: terraform init, only when this configuration was never
# initialised or its lock file is gone (`make install` deletes it after a rebuild of the provider).
# Every workspace shares .terraform, so one init serves every customer. Two runs starting at once
# init one after the other (flock), the second finding nothing to do.
ensure_init() {
    needs_init || return 0
    (
        flock -w 300 8 || { printf 'another terraform init of %s did not finish in 300 s\n' "$PWD" >&2; exit 1; }
        needs_init || exit 0
        printf '==> terraform init\n' >&2
        tf_default init -input=false "$@" >&2
    ) 8>>.terraform-init.lock
}

needs_init() {
    [[ ! -f .terraform/modules/modules.json || ! -f .terraform.lock.hcl ]]
}

# workspace_exists KEY. With the local backend (no backend block: no .terraform/terraform.tfstate)
# a workspace is a directory, which is much cheaper to look at than starting terraform. With another
# backend, its list of workspaces: the one remember_workspaces kept, when it was called.
workspace_exists() {
    local listed
    if [[ ! -f .terraform/terraform.tfstate ]]; then
        [[ -d "terraform.tfstate.d/$1" ]]
        return
    fi
    if [[ -v KNOWN_WORKSPACES ]]; then
        listed="$KNOWN_WORKSPACES"
    else
        listed="$(list_workspaces)" || return 1
    fi
    # A match on the whole text rather than `grep -q` in a pipe: grep leaving at the first match
    # would end the writer with SIGPIPE, which pipefail turns into "no such workspace".
    [[ $'\n'"$listed"$'\n' == *$'\n'"$1"$'\n'* ]]
}

# list_workspaces: the backend's workspaces, one a line (without the mark of the selected one).
list_workspaces() {
    local listed
    listed="$(tf_default workspace list)" || return 1
    sed 's/^[* ] *//; /^$/d' <<<"$listed"
}

# remember_workspaces: with a backend other than the local one, lists its workspaces once for the
# workspace_exists calls that follow: one terraform start for a whole fleet instead of one per
# customer. ensure_workspace adds those it creates.
remember_workspaces() {
    [[ -f .terraform/terraform.tfstate ]] || return 0
    KNOWN_WORKSPACES="$(list_workspaces)"
}

# ensure_workspace KEY: creates the customer's workspace (its own state) the first time.
ensure_workspace() {
    workspace_exists "$1" && return 0
    printf '==> creating workspace %s (the customer'"'"'s own state)\n' "$1" >&2
    tf_default workspace new "$1" >/dev/null || return 1
    if [[ -v KNOWN_WORKSPACES ]]; then
        KNOWN_WORKSPACES+=$'\n'"$1"
    fi
}
