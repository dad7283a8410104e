// A small OpenAI-compatible chat server on Go's net/http, run behind the gateway by
// tests/e2e/upstreams.rs: `go build -o APP main.go && APP PORT`, with UPSTREAM_KEY and
// GATEWAY_KEY in the environment. The same rules as openai_app.py (read its docstring):
// a target not in origin form or a request without Host is 400 (net/http itself refuses
// an HTTP/1.1 request without Host), any credential but `Bearer $UPSTREAM_KEY` 401;
// ctx-* models get 400 context_length_exceeded, requests with tools a call of the first
// tool, others `echo: ` and the last user message; every answer carries x-seen-host,
// x-seen-target, x-seen-key, x-seen-client-only, x-upstream-proto and x-upstream-server,
// and sets a cookie.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"
)

type object = map[string]any

var (
	upstreamKey   = os.Getenv("UPSTREAM_KEY")
	gatewayKey    = os.Getenv("GATEWAY_KEY")
	serverName    = "go/" + runtime.Version()
	toolArguments = `{"location": "Hanoi", "unit": "celsius"}`
	// Request headers of the client's that must stay on the gateway's side.
	clientOnly = []string{"cookie", "openai-organization", "openai-project", "x-api-key", "x-goog-api-key"}
)

// seenClientOnly lists the headers of clientOnly that arrived, as "[a,b]".
func seenClientOnly(r *http.Request) string {
	seen := []string{}
	for _, name := range clientOnly {
		if _, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
			seen = append(seen, name)
		}
	}
	return "[" + strings.Join(seen, ",") + "]"
}

func errorBody(message, kind string, param, code any) object {
	return object{"error": object{"message": message, "type": kind, "param": param, "code": code}}
}

func seenKey(r *http.Request) string {
	for _, values := range r.Header {
		for _, value := range values {
			if gatewayKey != "" && strings.Contains(value, gatewayKey) {
				return "gateway"
			}
		}
	}
	auth := append(append([]string{}, r.Header.Values("Authorization")...), r.Header.Values("Api-Key")...)
	switch {
	case len(auth) == 0:
		return "none"
	case len(auth) == 1 && auth[0] == "Bearer "+upstreamKey:
		return "upstream"
	default:
		return "other"
	}
}

func refusal(r *http.Request, needsKey bool) (int, object) {
	if !strings.HasPrefix(r.RequestURI, "/") {
		return 400, errorBody(fmt.Sprintf("request target %q is not in origin form", r.RequestURI), "invalid_request_error", nil, nil)
	}
	if r.Host == "" {
		return 400, errorBody("the request has no Host header", "invalid_request_error", nil, nil)
	}
	if key := seenKey(r); needsKey && key != "upstream" {
		message := fmt.Sprintf("Incorrect API key provided (the upstream saw the %s key).", key)
		return 401, errorBody(message, "invalid_request_error", nil, "invalid_api_key")
	}
	return 0, nil
}

// Pieces that concatenate back to text, each word with its trailing space.
func words(text string) []string {
	pieces := strings.SplitAfter(text, " ")
	if len(pieces) > 0 && pieces[len(pieces)-1] == "" {
		pieces = pieces[:len(pieces)-1]
	}
	return pieces
}

type message struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type chatRequest struct {
	Model    *string   `json:"model"`
	Messages []message `json:"messages"`
	Stream   bool      `json:"stream"`
	Tools    []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (request *chatRequest) lastUserText() string {
	for i := len(request.Messages) - 1; i >= 0; i-- {
		if text, ok := request.Messages[i].Content.(string); ok && request.Messages[i].Role == "user" {
			return text
		}
	}
	return ""
}

func (request *chatRequest) usage(completion int) object {
	prompt := 0
	for _, m := range request.Messages {
		if text, ok := m.Content.(string); ok {
			prompt += len(words(text))
		}
	}
	return object{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
}

func whole(base object, msg object, finish string, usage object) object {
	out := object{"object": "chat.completion", "usage": usage}
	for k, v := range base {
		out[k] = v
	}
	out["choices"] = []object{{"index": 0, "message": msg, "finish_reason": finish, "logprobs": nil}}
	return out
}

func chunks(base object, deltas []object, finish string, request *chatRequest, completion int) []object {
	chunk := func(delta object, finishReason any, choices bool) object {
		out := object{"object": "chat.completion.chunk", "choices": []object{}}
		for k, v := range base {
			out[k] = v
		}
		if choices {
			out["choices"] = []object{{"index": 0, "delta": delta, "finish_reason": finishReason, "logprobs": nil}}
		}
		return out
	}
	out := []object{}
	for _, delta := range deltas {
		out = append(out, chunk(delta, nil, true))
	}
	out = append(out, chunk(object{}, finish, true))
	if request.StreamOptions != nil && request.StreamOptions.IncludeUsage {
		last := chunk(nil, nil, false)
		last["usage"] = request.usage(completion)
		out = append(out, last)
	}
	return out
}

// chat answers a whole body (whole != nil) or the chunks of a stream.
func chat(request *chatRequest) (status int, answer object, stream []object) {
	if request.Model == nil || request.Messages == nil {
		return 400, errorBody("`model` and `messages` are required", "invalid_request_error", nil, nil), nil
	}
	model := *request.Model
	if strings.HasPrefix(model, "ctx-") {
		message := fmt.Sprintf("This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens (%s).", serverName)
		return 400, errorBody(message, "invalid_request_error", "messages", "context_length_exceeded"), nil
	}
	id := fmt.Sprintf("chatcmpl-%d", time.Now().UnixMilli())
	base := object{"id": id, "created": time.Now().Unix(), "model": model}
	if len(request.Tools) > 0 {
		name := request.Tools[0].Function.Name
		callID := "call_" + id[len(id)-8:]
		if !request.Stream {
			call := object{"id": callID, "type": "function", "function": object{"name": name, "arguments": toolArguments}}
			msg := object{"role": "assistant", "content": nil, "tool_calls": []object{call}}
			return 200, whole(base, msg, "tool_calls", request.usage(8)), nil
		}
		third := len(toolArguments) / 3
		pieces := []string{toolArguments[:third], toolArguments[third : 2*third], toolArguments[2*third:]}
		first := object{"index": 0, "id": callID, "type": "function", "function": object{"name": name, "arguments": ""}}
		deltas := []object{{"role": "assistant", "content": nil, "tool_calls": []object{first}}}
		for _, piece := range pieces {
			deltas = append(deltas, object{"tool_calls": []object{{"index": 0, "function": object{"arguments": piece}}}})
		}
		return 200, nil, chunks(base, deltas, "tool_calls", request, 8)
	}
	text := "echo: " + request.lastUserText()
	if !request.Stream {
		msg := object{"role": "assistant", "content": text}
		return 200, whole(base, msg, "stop", request.usage(len(words(text)))), nil
	}
	deltas := []object{{"role": "assistant", "content": ""}}
	for _, piece := range words(text) {
		deltas = append(deltas, object{"content": piece})
	}
	return 200, nil, chunks(base, deltas, "stop", request, len(words(text)))
}

func answer(r *http.Request) (int, object, []object) {
	path := strings.SplitN(r.RequestURI, "?", 2)[0]
	if status, body := refusal(r, path != "/health"); body != nil {
		return status, body, nil
	}
	switch {
	case r.Method == "GET" && path == "/health":
		return 200, object{"server": serverName}, nil
	case r.Method == "GET" && path == "/v1/models":
		return 200, object{"object": "list", "data": []object{{"id": "gpt-4.1", "object": "model", "owned_by": "tests"}}}, nil
	case r.Method != "POST" || path != "/v1/chat/completions":
		return 404, errorBody("no route for "+r.Method+" "+path, "invalid_request_error", nil, nil), nil
	}
	body, err := io.ReadAll(r.Body)
	var request chatRequest
	if err == nil {
		err = json.Unmarshal(body, &request)
	}
	if err != nil {
		return 400, errorBody("the body is not JSON: "+err.Error(), "invalid_request_error", nil, nil), nil
	}
	return chat(&request)
}

func handle(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("x-seen-host", r.Host)
	h.Set("x-seen-target", r.RequestURI)
	h.Set("x-seen-key", seenKey(r))
	h.Set("x-seen-client-only", seenClientOnly(r))
	h.Set("set-cookie", "upstream-session=1; Path=/")
	h.Set("x-upstream-proto", r.Proto)
	h.Set("x-upstream-server", serverName)
	status, body, stream := answer(r)
	if stream == nil {
		h.Set("content-type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	h.Set("content-type", "text/event-stream")
	h.Set("cache-control", "no-cache")
	w.WriteHeader(200)
	flusher, _ := w.(http.Flusher)
	for _, event := range stream {
		data, _ := json.Marshal(event)
		fmt.Fprintf(w, "data: %s\n\n", data)
		if flusher != nil {
			flusher.Flush()
		}
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func main() {
	if len(os.Args) != 2 || upstreamKey == "" {
		fmt.Fprintln(os.Stderr, "usage: UPSTREAM_KEY=... openai-app PORT")
		os.Exit(2)
	}
	// A handler of its own rather than ServeMux, which would redirect an absolute-form
	// target before the handler could refuse it.
	server := &http.Server{Addr: "127.0.0.1:" + os.Args[1], Handler: http.HandlerFunc(handle)}
	if err := server.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
