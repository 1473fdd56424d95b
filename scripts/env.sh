# Sourced by the scripts that read settings (compose.sh, doctor.sh, backup.sh): env_get KEY prints
# KEY from the environment if it is set there, else its last value in the env file ($STACK_ENV_FILE,
# default .env in the current directory) - without sourcing the file, since values may contain $,
# spaces or quotes. Surrounding quotes are removed, as compose does.
env_file=${STACK_ENV_FILE:-.env}
env_get() {
  local key=$1 val
  if [ -n "${!key+x}" ]; then printf '%s' "${!key}"; return; fi
  [ -f "$env_file" ] || return 0
  val=$(sed -n "s/^[[:space:]]*$key[[:space:]]*=//p" "$env_file" | tail -n 1)
  val=${val%$'\r'}
  case $val in \"*\") val=${val#\"}; val=${val%\"};; \'*\') val=${val#\'}; val=${val%\'};; esac
  printf '%s' "$val"
}
