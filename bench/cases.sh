# shellcheck shell=bash
# The request cases of bench/rounds.sh and bench/instructions.sh (source it; the script
# defines `die`). A case is a kind of answer and the request that asks for it:
#
#   whole, stream    the bench's one-line chat completion (bench/chat.lua's body, ~150
#                    bytes), max_tokens 16: one JSON answer, or a stream of 19 events
#   KIND-<N>k        the same with the user message padded to N KiB of prose with escaped
#                    quotes and newlines, as a conversation's history makes a request
#   stream-<N>ev     the one-line request, with max_tokens set for a stream of N events
#
# The standard cases, measured unless BENCH_CASES (or a script's arguments) names others:
STANDARD_CASES=(whole whole-16k whole-64k stream stream-16k stream-200ev)

# Events of a stream besides its content chunks, as the client receives them: the role
# chunk, the finish chunk and `[DONE]` (a gateway that asks for usage drops the usage
# chunk it asked for when the client did not).
STREAM_EXTRA_EVENTS=3

# case_parse NAME: sets CASE_STREAM (0 or 1), CASE_KB (the padding in KiB, 0 for the one
# line) and CASE_TOKENS (max_tokens: the content chunks of a stream); fails on a name
# that is not a case.
case_parse() {
  [[ $1 =~ ^(whole|stream)(-([0-9]+)k)?(-([0-9]+)ev)?$ ]] || return 1
  CASE_STREAM=0
  [[ ${BASH_REMATCH[1]} == stream ]] && CASE_STREAM=1
  CASE_KB=$((10#${BASH_REMATCH[3]:-0}))
  CASE_TOKENS=16
  if [[ -n ${BASH_REMATCH[5]} ]]; then
    [[ $CASE_STREAM == 1 ]] && ((10#${BASH_REMATCH[5]} > STREAM_EXTRA_EVENTS)) || return 1
    CASE_TOKENS=$((10#${BASH_REMATCH[5]} - STREAM_EXTRA_EVENTS))
  fi
  return 0
}

# select_cases [NAME...]: sets CASES to the cases named, else to those of $BENCH_CASES
# (space-separated), else to STANDARD_CASES, each checked; and MOCK_TOKENS, the mocks'
# --tokens: the longest answer any of them asks for, and at least stream-200ev's, so that
# a case is served the same answer whichever others run with it (each request's
# max_tokens cuts its answer: finish_reason "length" below that).
select_cases() {
  local name
  if [[ $# -gt 0 ]]; then
    CASES=("$@")
  elif [[ -n ${BENCH_CASES:-} ]]; then
    read -ra CASES <<<"$BENCH_CASES"
  else
    CASES=("${STANDARD_CASES[@]}")
  fi
  [[ ${#CASES[@]} -gt 0 ]] || die "no cases selected"
  MOCK_TOKENS=$((200 - STREAM_EXTRA_EVENTS))
  for name in "${CASES[@]}"; do
    case_parse "$name" ||
      die "unknown case '$name': cases are whole and stream, with -<N>k (a request of N KiB) or, for stream, -<N>ev (N events); standard: ${STANDARD_CASES[*]}"
    if ((CASE_TOKENS > MOCK_TOKENS)); then MOCK_TOKENS=$CASE_TOKENS; fi
  done
}

# case_body NAME: the request body of case NAME on stdout, without a newline.
case_body() {
  local content='Say hello in five words.' line i stream=''
  case_parse "$1" || die "unknown case '$1'"
  if ((CASE_KB > 0)); then
    # 128 bytes a line as JSON: a newline and a quoted word escaped in each.
    line='TCP is connection-oriented and \"reliable\"; UDP sends all of its datagrams without any handshake, ordering or retransmission.\n'
    content=''
    for ((i = 0; i < CASE_KB * 8; i++)); do content+=$line; done
  fi
  [[ $CASE_STREAM == 1 ]] && stream=',"stream":true'
  printf '{"model":"gpt-4.1","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"%s"}],"max_tokens":%d%s}' \
    "$content" "$CASE_TOKENS" "$stream"
}

# write_case_bodies DIR: writes each of CASES' bodies to DIR/NAME.json.
write_case_bodies() {
  local name
  for name in "${CASES[@]}"; do case_body "$name" >"$1/$name.json"; done
}
