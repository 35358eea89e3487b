// Command goverify checks, with Go's golang.org/x/mod/sumdb packages, what the adapter's
// Python integrity code produced: signed checkpoints, inclusion and consistency proofs, and
// tlog-tiles resources. It is the independent implementation a partner would use, so the
// tests do not only check our code against itself.
//
//	goverify verify < request.json   prints OK, or FAIL: <reason> and exits 1
//	goverify sign < request.json     prints the note signed with {"skey", "text"}
//	goverify keygen NAME             prints a new signer key and its verifier key, one a line
//
// A verify request (byte strings in base64):
//
//	{
//	  "vkey": "<verifier key>", "origin": "<log origin>", "checkpoint": "<signed note>",
//	  "inclusion": [{"index": 3, "entry": "<entry>", "proof": ["<hash>", ...]}],
//	  "consistency": [{"checkpoint": "<older signed note>", "proof": ["<hash>", ...]}],
//	  "tiles": "<directory holding the tile/... resources of the log>"
//	}
//
// With "tiles", the tree is also read from the tiles through tlog.TileHashReader (which
// authenticates every tile against the checkpoint's root hash), each proof is rebuilt from
// them and compared, and every entry bundle is checked against the level-0 hashes.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

type inclusion struct {
	Index int64    `json:"index"`
	Entry []byte   `json:"entry"`
	Proof [][]byte `json:"proof"`
}

type consistency struct {
	Checkpoint string   `json:"checkpoint"`
	Proof      [][]byte `json:"proof"`
}

type verifyRequest struct {
	Vkey        string        `json:"vkey"`
	Origin      string        `json:"origin"`
	Checkpoint  string        `json:"checkpoint"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
	Tiles       string        `json:"tiles"`
}

type signRequest struct {
	Skey string `json:"skey"`
	Text string `json:"text"`
}

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: goverify verify|sign|keygen NAME"))
	}
	var err error
	switch os.Args[1] {
	case "verify":
		var req verifyRequest
		if err = json.NewDecoder(os.Stdin).Decode(&req); err == nil {
			err = verify(req)
		}
		if err == nil {
			fmt.Println("OK")
		}
	case "sign":
		var req signRequest
		if err = json.NewDecoder(os.Stdin).Decode(&req); err == nil {
			err = sign(req)
		}
	case "keygen":
		if len(os.Args) != 3 {
			err = errors.New("usage: goverify keygen NAME")
		} else {
			var skey, vkey string
			skey, vkey, err = note.GenerateKey(rand.Reader, os.Args[2])
			fmt.Printf("%s\n%s\n", skey, vkey)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Printf("FAIL: %v\n", err)
	os.Exit(1)
}

func sign(req signRequest) error {
	signer, err := note.NewSigner(req.Skey)
	if err != nil {
		return fmt.Errorf("signer key: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: req.Text}, signer)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(msg)
	return err
}

// openCheckpoint verifies a signed checkpoint and parses its text per c2sp.org/tlog-checkpoint
// (tlog.ParseTree only reads the go.sum database's own origin line).
func openCheckpoint(msg string, verifier note.Verifier, origin string) (tlog.Tree, error) {
	n, err := note.Open([]byte(msg), note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return tlog.Tree{}, errors.New("checkpoint: fewer than three lines")
	}
	if lines[0] != origin {
		return tlog.Tree{}, fmt.Errorf("checkpoint: origin %q, want %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return tlog.Tree{}, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return tlog.Tree{}, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	tree := tlog.Tree{N: size}
	copy(tree.Hash[:], root)
	return tree, nil
}

func hashes(raw [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(raw))
	for i, h := range raw {
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d has %d bytes", i, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

func verify(req verifyRequest) error {
	verifier, err := note.NewVerifier(req.Vkey)
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	tree, err := openCheckpoint(req.Checkpoint, verifier, req.Origin)
	if err != nil {
		return err
	}
	for _, inc := range req.Inclusion {
		proof, err := hashes(inc.Proof)
		if err != nil {
			return fmt.Errorf("inclusion of %d: %w", inc.Index, err)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, inc.Index, tlog.RecordHash(inc.Entry)); err != nil {
			return fmt.Errorf("inclusion of %d in tree %d: %w", inc.Index, tree.N, err)
		}
	}
	for _, con := range req.Consistency {
		old, err := openCheckpoint(con.Checkpoint, verifier, req.Origin)
		if err != nil {
			return fmt.Errorf("older %w", err)
		}
		proof, err := hashes(con.Proof)
		if err != nil {
			return fmt.Errorf("consistency from %d: %w", old.N, err)
		}
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
			return fmt.Errorf("consistency from %d to %d: %w", old.N, tree.N, err)
		}
	}
	if req.Tiles != "" {
		return verifyTiles(req, tree, verifier)
	}
	return nil
}

// tileDir reads C2SP tlog-tiles from a directory. Go's sumdb tile paths carry the tile height
// (tile/8/0/001); C2SP paths do not (tile/0/001), and call the data tiles "entries".
type tileDir string

func c2spPath(t tlog.Tile) string {
	path := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", tileHeight))
	if t.L == -1 {
		path = "entries/" + strings.TrimPrefix(path, "data/")
	}
	return "tile/" + path
}

func (d tileDir) Height() int { return tileHeight }

func (d tileDir) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := os.ReadFile(filepath.Join(string(d), filepath.FromSlash(c2spPath(t))))
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	return data, nil
}

func (d tileDir) SaveTiles([]tlog.Tile, [][]byte) {}

func verifyTiles(req verifyRequest, tree tlog.Tree, verifier note.Verifier) error {
	dir := tileDir(req.Tiles)
	reader := tlog.TileHashReader(tree, dir)
	if tree.N > 0 {
		th, err := tlog.TreeHash(tree.N, reader)
		if err != nil {
			return fmt.Errorf("tiles: %w", err)
		}
		if th != tree.Hash {
			return errors.New("tiles: tree hash differs from the checkpoint")
		}
	}
	for _, inc := range req.Inclusion {
		proof, err := tlog.ProveRecord(tree.N, inc.Index, reader)
		if err != nil {
			return fmt.Errorf("tiles: inclusion of %d: %w", inc.Index, err)
		}
		if err := sameProof(proof, inc.Proof); err != nil {
			return fmt.Errorf("tiles: inclusion of %d: %w", inc.Index, err)
		}
	}
	for _, con := range req.Consistency {
		old, err := openCheckpoint(con.Checkpoint, verifier, req.Origin)
		if err != nil {
			return fmt.Errorf("older %w", err)
		}
		proof, err := tlog.ProveTree(tree.N, old.N, reader)
		if err != nil {
			return fmt.Errorf("tiles: consistency from %d: %w", old.N, err)
		}
		if err := sameProof(proof, con.Proof); err != nil {
			return fmt.Errorf("tiles: consistency from %d: %w", old.N, err)
		}
	}
	for start := int64(0); start < tree.N; start += 1 << tileHeight {
		width := min(tree.N-start, 1<<tileHeight)
		bundle := tlog.Tile{H: tileHeight, L: -1, N: start >> tileHeight, W: int(width)}
		if err := verifyBundle(dir, bundle, start, reader); err != nil {
			return fmt.Errorf("tiles: %s: %w", c2spPath(bundle), err)
		}
	}
	return nil
}

func sameProof(got []tlog.Hash, want [][]byte) error {
	if len(got) != len(want) {
		return fmt.Errorf("rebuilt from tiles: %d hashes, given: %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i][:], want[i]) {
			return fmt.Errorf("hash %d rebuilt from tiles differs from the one given", i)
		}
	}
	return nil
}

func verifyBundle(dir tileDir, bundle tlog.Tile, start int64, reader tlog.HashReader) error {
	data, err := os.ReadFile(filepath.Join(string(dir), filepath.FromSlash(c2spPath(bundle))))
	if err != nil {
		return err
	}
	indexes := make([]int64, bundle.W)
	for i := range indexes {
		indexes[i] = tlog.StoredHashIndex(0, start+int64(i))
	}
	leaves, err := reader.ReadHashes(indexes)
	if err != nil {
		return err
	}
	for i := range bundle.W {
		if len(data) < 2 {
			return fmt.Errorf("entry %d: truncated", start+int64(i))
		}
		size := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+size {
			return fmt.Errorf("entry %d: truncated", start+int64(i))
		}
		if tlog.RecordHash(data[2:2+size]) != leaves[i] {
			return fmt.Errorf("entry %d does not hash to its leaf", start+int64(i))
		}
		data = data[2+size:]
	}
	if len(data) != 0 {
		return errors.New("bytes after the last entry")
	}
	return nil
}
