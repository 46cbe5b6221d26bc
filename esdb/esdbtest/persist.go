package esdbtest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// logFileName is the file inside the data directory that holds the log.
const logFileName = "esdbtest.log"

// logFile appends records to a file so that a restarted server has the same
// events and positions. Each record is a length-prefixed frame; a torn frame
// at the end (a crash mid-write) is cut off on open.
type logFile struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
}

// openLogFile opens (creating if needed) the log in dir and replays every
// complete record through fn.
func openLogFile(dir string, fn func(*record)) (*logFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, logFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	good, err := replay(f, fn)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	if err := f.Truncate(good); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("truncate torn tail: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("seek log end: %w", err)
	}
	return &logFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func replay(f *os.File, fn func(*record)) (int64, error) {
	r := bufio.NewReaderSize(f, 256<<10)
	var good int64
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return good, nil
			}
			return good, err
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return good, nil
			}
			return good, err
		}
		rec, err := decodeRecord(frame)
		if err != nil {
			return good, nil // a torn or corrupt tail ends the log
		}
		fn(rec)
		good += 4 + int64(n)
	}
}

// write appends records and flushes them to the OS, so a killed process
// loses nothing that was acknowledged.
func (l *logFile) write(recs []*record) error {
	for _, r := range recs {
		l.buf = encodeRecord(l.buf[:0], r)
		var hdr [4]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(len(l.buf)))
		if _, err := l.w.Write(hdr[:]); err != nil {
			return fmt.Errorf("write log: %w", err)
		}
		if _, err := l.w.Write(l.buf); err != nil {
			return fmt.Errorf("write log: %w", err)
		}
	}
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("flush log: %w", err)
	}
	return nil
}

func (l *logFile) close() error {
	ferr := l.w.Flush()
	serr := l.f.Sync()
	cerr := l.f.Close()
	return errors.Join(ferr, serr, cerr)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func encodeRecord(b []byte, r *record) []byte {
	b = appendBytes(b, []byte(r.Stream))
	b = binary.AppendUvarint(b, r.Revision)
	b = append(b, r.ID[:]...)
	b = appendBytes(b, []byte(r.Type))
	b = appendBytes(b, []byte(r.ContentType))
	b = binary.AppendVarint(b, r.Created)
	b = appendBytes(b, r.Data)
	b = appendBytes(b, r.Meta)
	b = binary.AppendUvarint(b, r.Pos)
	return b
}

var errCorrupt = errors.New("corrupt record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errCorrupt
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func decodeRecord(frame []byte) (*record, error) {
	d := &decoder{b: frame}
	r := &record{}
	r.Stream = string(d.bytes())
	r.Revision = d.uvarint()
	if d.err == nil && len(d.b) >= 16 {
		copy(r.ID[:], d.b[:16])
		d.b = d.b[16:]
	} else {
		d.err = errCorrupt
	}
	r.Type = string(d.bytes())
	r.ContentType = string(d.bytes())
	r.Created = d.varint()
	r.Data = d.bytes()
	r.Meta = d.bytes()
	r.Pos = d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}
