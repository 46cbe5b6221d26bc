package esdbtest

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	protobuf "google.golang.org/protobuf/proto"
)

// fuzzProposed is the official encoding of one proposed event.
func fuzzProposed(id uuid.UUID, asString bool, typ, ct string, data, meta []byte) *streams.AppendReq_ProposedMessage {
	pid := &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(uint64(id[0])<<56 | uint64(id[1])<<48 | uint64(id[2])<<40 | uint64(id[3])<<32 | uint64(id[4])<<24 | uint64(id[5])<<16 | uint64(id[6])<<8 | uint64(id[7])),
		LeastSignificantBits: int64(uint64(id[8])<<56 | uint64(id[9])<<48 | uint64(id[10])<<40 | uint64(id[11])<<32 | uint64(id[12])<<24 | uint64(id[13])<<16 | uint64(id[14])<<8 | uint64(id[15])),
	}}}
	if asString {
		pid = &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return &streams.AppendReq_ProposedMessage{
		Id:             pid,
		Metadata:       map[string]string{"type": typ, "content-type": ct},
		CustomMetadata: meta,
		Data:           data,
	}
}

// FuzzAppendFrameDecode feeds arbitrary bytes to the hand-written AppendReq
// and BatchAppendReq decoders: an error or a frame, never a panic, and a
// frame reused after an error still decodes a valid message.
func FuzzAppendFrameDecode(f *testing.F) {
	ev := fuzzProposed(uuid.MustParse("0b1e6a3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"), false, "OrderCreated", contentTypeJSON, []byte(`{"a":1}`), []byte(`{}`))
	msg, _ := protobuf.Marshal(&streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: ev}})
	f.Add(msg)
	opt, _ := protobuf.Marshal(&streams.AppendReq{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("order-1")},
		ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}})
	f.Add(opt)
	batch, _ := protobuf.Marshal(&streams.BatchAppendReq{
		CorrelationId:    &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		ProposedMessages: []*streams.BatchAppendReq_ProposedMessage{{Id: ev.Id, Metadata: ev.Metadata, Data: ev.Data}},
		IsFinal:          true,
	})
	f.Add(batch)
	f.Add([]byte{0x12, 0x05, 0x0a, 0x03, 0x12, 0x01, 0x78})
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a appendFrame
		_ = a.decode(b)
		if err := a.decode(msg); err != nil || a.event.Type != "OrderCreated" || !bytes.Equal(a.event.Data, []byte(`{"a":1}`)) {
			t.Fatalf("a reused frame decodes %+v, %v", a.event, err)
		}
		var bf batchFrame
		_ = bf.decode(b)
		if err := bf.decode(batch); err != nil || len(bf.events) != 1 || !bf.isFinal || bf.bad != "" {
			t.Fatalf("a reused batch frame decodes %d events, final %v, %q, %v", len(bf.events), bf.isFinal, bf.bad, err)
		}
	})
}

// FuzzAppendFrameMatchesProto encodes an AppendReq from fuzz input with the
// official message and decodes it by hand: both read the same event.
func FuzzAppendFrameMatchesProto(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), false, "OrderCreated", contentTypeJSON, []byte(`{"a":1}`), []byte(nil))
	f.Add([]byte("fedcba9876543210"), true, "", contentTypeBinary, []byte{0, 1, 2}, []byte("meta"))
	f.Add([]byte{}, true, "é ✓", "", []byte(nil), []byte{})
	f.Fuzz(func(t *testing.T, idb []byte, asString bool, typ, ct string, data, meta []byte) {
		if !utf8.ValidString(typ) || !utf8.ValidString(ct) {
			return // proto3 strings are UTF-8
		}
		var id uuid.UUID
		copy(id[:], idb)
		msg, err := protobuf.Marshal(&streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: fuzzProposed(id, asString, typ, ct, data, meta)}})
		if err != nil {
			t.Fatal(err)
		}
		var want streams.AppendReq
		if err := protobuf.Unmarshal(msg, &want); err != nil {
			t.Fatal(err)
		}
		var a appendFrame
		if err := a.decode(msg); err != nil {
			t.Fatalf("hand decoder refused what proto accepts: %v", err)
		}
		pm := want.GetProposedMessage()
		e := a.event
		if !a.hasEvent || e.ID != id || e.Type != pm.Metadata["type"] || e.ContentType != pm.Metadata["content-type"] ||
			!bytes.Equal(e.Data, pm.Data) || !bytes.Equal(e.Meta, pm.CustomMetadata) {
			t.Fatalf("hand decoder read %+v, proto %v", e, pm)
		}
	})
}

// FuzzFilter compiles filter expressions with the .NET regex engine and
// matches names against them: an invalid pattern is an error, a match
// never panics, and a prefix filter agrees with strings.HasPrefix.
func FuzzFilter(f *testing.F) {
	f.Add("^order-", "order-1", "", false)
	f.Add(`\d+$`, "OrderCreated2", "", true)
	f.Add("", "order-1", "ord", false)
	f.Add(`(?<x>a)\k<x>`, "aa", "", true)
	f.Add(`(a+)+$`, strings.Repeat("a", 30)+"!", "", false)
	f.Add("[", "$epoch-information", "$", true)
	f.Add(`(?i)ORDER\p{L}`, "$persistentsubscription-$all::g-checkpoint", "", false)
	srv := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, regex, name, prefix string, onType bool) {
		expr := &streams.ReadReq_Options_FilterOptions_Expression{Regex: regex}
		if prefix != "" {
			expr.Prefix = []string{prefix}
		}
		fo := &streams.ReadReq_Options_FilterOptions{
			Filter: &streams.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: expr},
			Window: &streams.ReadReq_Options_FilterOptions_Max{Max: 32},
		}
		if onType {
			fo.Filter = &streams.ReadReq_Options_FilterOptions_EventType{EventType: expr}
		}
		flt, err := srv.compileFilter(fo)
		if err != nil {
			return
		}
		r := &record{Stream: name, Type: name}
		got := flt.match(r)
		if flt.match(r) != got {
			t.Fatalf("the cached verdict differs for %q", name)
		}
		if regex == "" && !hiddenFromAll(name) && got != (prefix != "" && strings.HasPrefix(name, prefix)) {
			t.Fatalf("prefix %q on %q: %v", prefix, name, got)
		}
	})
}
