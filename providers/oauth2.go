package providers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// TokensFromOAuth2 reads a token endpoint's answer. Lifetimes are relative
// to now; scope may be comma-separated (LinkedIn) or space-separated.
func TokensFromOAuth2(tok *oauth2.Token, now time.Time) Tokens {
	t := Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	if tok.ExpiresIn > 0 {
		t.ExpiresAt = now.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC()
	} else if !tok.Expiry.IsZero() {
		t.ExpiresAt = tok.Expiry.UTC()
	}
	if s := seconds(tok.Extra("refresh_token_expires_in")); s > 0 && t.RefreshToken != "" {
		t.RefreshExpiresAt = now.Add(time.Duration(s) * time.Second).UTC()
	}
	if s, ok := tok.Extra("scope").(string); ok {
		t.Scopes = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	}
	return t
}

func seconds(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}

// TokenError classifies a failed call to a token endpoint. Its message is
// built from the error code and description only: the text of
// oauth2.RetrieveError can carry the whole response body. rateWait, if not
// nil, says how long to wait after a 429.
func TokenError(provider string, err error, rateWait func(*http.Response, string) time.Duration) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return &Error{Kind: KindRetryable, Provider: provider, Code: "NETWORK", Message: "the token endpoint did not answer", Err: err}
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	e := &Error{Provider: provider, Status: status, Code: re.ErrorCode, Message: CleanMessage(re.ErrorDescription)}
	switch {
	case status >= 500 || status == 0 && re.ErrorCode == "":
		e.Kind, e.Code = KindRetryable, "HTTP_"+strconv.Itoa(status)
	case status == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = KindRateLimited, time.Minute
		if rateWait != nil {
			e.RetryAfter = rateWait(re.Response, e.Message)
		}
	default:
		// invalid_grant, invalid_request (a code not found, expired or for
		// another redirect), invalid_client: none gets better by retrying.
		e.Kind = KindAuth
		if e.Code == "" {
			e.Code = "HTTP_" + strconv.Itoa(status)
		}
	}
	if e.Message == "" {
		e.Message = "the token endpoint refused the request"
	}
	return e
}

// CleanMessage bounds a platform's message for storage: one line, at most
// 500 bytes, cut on a character boundary.
func CleanMessage(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= 500 {
		return s
	}
	cut := 500
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
