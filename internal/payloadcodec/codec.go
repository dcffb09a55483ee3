// Package payloadcodec encrypts what PostFlow stores in Temporal: workflow
// and activity inputs and results, signals and queries. Post content and
// account names are user data, and a Temporal cluster (Temporal Cloud
// included) should hold none of it in the clear. The Web UI shows payloads
// decoded through PostFlow's codec endpoint (Handler), to operators only.
//
// A payload is sealed whole (its metadata and data) with AES-256-GCM by
// tokencipher, under a key of its own (TEMPORAL_PAYLOAD_KEY, rotated with
// TEMPORAL_PAYLOAD_PREVIOUS_KEYS), and bound to this use, so a sealed token
// cannot pass for a payload. Payloads that are not sealed decode as they
// are: runs started before encryption was turned on keep working.
package payloadcodec

import (
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/postflow/postflow/internal/tokencipher"
)

const (
	// Encoding marks a sealed payload in its metadata.
	Encoding = "binary/encrypted"
	// cipherName says how, for operators reading raw histories.
	cipherName = "AES-256-GCM/tokencipher-v1"
	binding    = "temporal-payload"
)

// Codec is a converter.PayloadCodec.
type Codec struct {
	cipher *tokencipher.Cipher
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New seals with c's current key and opens with any of its keys.
func New(c *tokencipher.Cipher) *Codec { return &Codec{cipher: c} }

// NewFromKeys seals with current and opens with it and previous.
func NewFromKeys(current []byte, previous ...[]byte) (*Codec, error) {
	c, err := tokencipher.New(current, previous...)
	if err != nil {
		return nil, fmt.Errorf("payloadcodec: %w", err)
	}
	return New(c), nil
}

// Encode seals each payload.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		raw, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("payloadcodec: marshal: %w", err)
		}
		sealed, err := c.cipher.Seal(string(raw), binding)
		if err != nil {
			return nil, fmt.Errorf("payloadcodec: seal: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				"encryption-cipher":        []byte(cipherName),
			},
			Data: []byte(sealed),
		}
	}
	return out, nil
}

// Decode opens each sealed payload and passes the others through.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		raw, err := c.cipher.Open(string(p.GetData()), binding)
		if err != nil {
			return nil, fmt.Errorf("payloadcodec: open: %w", err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal([]byte(raw), &orig); err != nil {
			return nil, fmt.Errorf("payloadcodec: unmarshal: %w", err)
		}
		out[i] = &orig
	}
	return out, nil
}

// DataConverter is the SDK's default converter with payloads sealed by c:
// for the client that starts runs and for the worker.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}
