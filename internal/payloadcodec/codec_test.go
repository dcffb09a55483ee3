package payloadcodec_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/postflow/postflow/internal/payloadcodec"
	"github.com/postflow/postflow/internal/tokencipher"
)

func codec(t *testing.T, key byte, previous ...byte) *payloadcodec.Codec {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, 32))
	}
	c, err := tokencipher.New(bytes.Repeat([]byte{key}, 32), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return payloadcodec.New(c)
}

func payload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripHidesTheContent(t *testing.T) {
	c := codec(t, 1)
	in := []*commonpb.Payload{payload(t, map[string]string{"content": "Our launch is on Tuesday", "name": "Ada Lovelace"}), payload(t, nil)}
	enc, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range enc {
		raw, _ := proto.Marshal(p)
		if bytes.Contains(raw, []byte("Tuesday")) || bytes.Contains(raw, []byte("Ada")) || bytes.Contains(raw, []byte("json/plain")) {
			t.Errorf("an encoded payload shows its plaintext: %s", raw)
		}
		if string(p.GetMetadata()["encoding"]) != payloadcodec.Encoding {
			t.Errorf("metadata %v", p.GetMetadata())
		}
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(in[i], dec[i]) {
			t.Errorf("payload %d: %v, want %v", i, dec[i], in[i])
		}
	}
	// Sealing twice gives two texts (a nonce per payload).
	again, _ := c.Encode(in[:1])
	if bytes.Equal(again[0].GetData(), enc[0].GetData()) {
		t.Error("two encodings are equal")
	}
}

func TestDecodeRefusesAndPassesThrough(t *testing.T) {
	c := codec(t, 1)
	plain := payload(t, "not sealed")
	enc, _ := c.Encode([]*commonpb.Payload{payload(t, "secret")})
	tampered := proto.Clone(enc[0]).(*commonpb.Payload)
	// Another base64url character, so the text still decodes and only
	// GCM's tag can tell.
	i := len(tampered.Data) - 2
	tampered.Data[i] = map[bool]byte{true: 'B', false: 'A'}[tampered.Data[i] == 'A']
	tests := []struct {
		name    string
		codec   *payloadcodec.Codec
		in      *commonpb.Payload
		wantErr error
	}{
		{"an unsealed payload passes through", c, plain, nil},
		{"a previous key still opens", codec(t, 2, 1), enc[0], nil},
		{"another key does not", codec(t, 2), enc[0], tokencipher.ErrUnknownKey},
		{"a tampered payload does not", c, tampered, tokencipher.ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.codec.Decode([]*commonpb.Payload{tt.in})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(out[0].GetMetadata()["encoding"]) == payloadcodec.Encoding {
				t.Errorf("still sealed: %v", out[0])
			}
		})
	}
}

// A sealed OAuth token is not a payload: the bindings differ.
func TestATokenIsNoPayload(t *testing.T) {
	cipher, _ := tokencipher.New(bytes.Repeat([]byte{1}, 32))
	sealed, _ := cipher.Seal(string(mustMarshal(t, payload(t, "x"))), "org/linkedin/urn#access")
	p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(payloadcodec.Encoding)}, Data: []byte(sealed)}
	if _, err := payloadcodec.New(cipher).Decode([]*commonpb.Payload{p}); err == nil || !strings.Contains(err.Error(), "open") {
		t.Errorf("decoded a token as a payload: %v", err)
	}
}

func mustMarshal(t *testing.T, p *commonpb.Payload) []byte {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
