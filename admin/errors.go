package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	pb "github.com/tollgate/tollgate/proto"
)

// apiError is an error answer in the original's shape: the status code, the
// x-amzn-ErrorType header and {"message": ...}.
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter string // Retry-After header, when set
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "BadRequestException", msg: fmt.Sprintf(format, args...)}
}

func notFound(msg string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "NotFoundException", msg: msg}
}

func conflict(msg string) *apiError {
	return &apiError{status: http.StatusConflict, code: "ConflictException", msg: msg}
}

func unavailable(msg string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: "ServiceUnavailableException", msg: msg, retryAfter: "1"}
}

// Messages the original uses for missing objects.
const (
	msgPlanNotFound       = "Invalid Usage Plan ID specified"
	msgKeyNotFound        = "Invalid API Key identifier specified"
	msgAPINotFound        = "Invalid API identifier specified"
	msgStageNotFound      = "Invalid Stage identifier specified"
	msgDeploymentNotFound = "Invalid Deployment identifier specified"
)

// resultError maps a business failure from the state machine to an answer.
func resultError(res *pb.Result) *apiError {
	switch res.GetCode() {
	case pb.ErrorCode_ERROR_CODE_NONE:
		return nil
	case pb.ErrorCode_ERROR_CODE_BAD_REQUEST:
		return badRequest("%s", res.GetMessage())
	case pb.ErrorCode_ERROR_CODE_NOT_FOUND:
		return notFound(res.GetMessage())
	case pb.ErrorCode_ERROR_CODE_CONFLICT:
		return conflict(res.GetMessage())
	}
	return &apiError{status: http.StatusInternalServerError, code: "InternalFailure",
		msg: fmt.Sprintf("unexpected result code %v: %s", res.GetCode(), res.GetMessage())}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	h.Set("x-amzn-ErrorType", e.code)
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	writeJSON(w, e.status, struct {
		Message string `json:"message"`
	}{e.msg})
	level := slog.LevelDebug
	if e.status >= 500 {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "admin request failed",
		"request_id", requestIDFrom(r.Context()), "method", r.Method, "path", r.URL.Path,
		"status", e.status, "error_type", e.code, "message", e.msg)
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value written here is built by this package from plain
		// types, so this is a programming error; still answer in shape.
		w.Header().Set("x-amzn-ErrorType", "InternalFailure")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"message":"could not encode the response"}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeAccepted answers a delete: 202 with no body.
func writeAccepted(w http.ResponseWriter) {
	w.WriteHeader(http.StatusAccepted)
}
