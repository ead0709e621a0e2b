package countersign

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// ImportLine is one data row of an invitation import, as read from the CSV.
// Problem is set when the row itself cannot be used (the rest of the file can).
type ImportLine struct {
	Row  int // 1-based data row
	Line int // line of the file where the row starts
	InvitationRequest
	Problem string
}

// importColumns are the columns an import may have; email is required.
var importColumns = []string{"email", "name", "org_role", "teams"}

// ParseInvitationCSV reads an invitation import (SPEC §2): a header row naming
// the columns (email required; name, org_role, teams optional, in any order,
// case-insensitive) and at most MaxImportRows data rows. teams is a
// ';'-separated list of team names. A file that is not CSV, has no email
// column or has too many rows is refused whole (EINVALIDCSV, ETOOMANYROWS);
// a row with more fields than the header is reported on its own.
func ParseInvitationCSV(data []byte) ([]ImportLine, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		return nil, Errorf(EINVALIDCSV, "the file is not CSV text: it is not UTF-8 or contains binary data")
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, Errorf(EINVALIDCSV, "the file is empty: the first line must be a header such as email,name,org_role,teams")
	}
	if err != nil {
		return nil, csvError(err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case !slices.Contains(importColumns, h):
			return nil, Errorf(EINVALIDCSV, "the header has an unknown column %q: the columns are %s (email required)", h, strings.Join(importColumns, ", "))
		case col[h] != 0:
			return nil, Errorf(EINVALIDCSV, "the header names column %q twice", h)
		}
		col[h] = i + 1 // 0 means absent
	}
	if col["email"] == 0 {
		return nil, Errorf(EINVALIDCSV, "the first line must be a header with an email column, such as email,name,org_role,teams")
	}
	var lines []ImportLine
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		if len(lines) == MaxImportRows {
			return nil, Errorf(ETOOMANYROWS, "the file has more than %d data rows: split it; nothing was imported", MaxImportRows)
		}
		line, _ := r.FieldPos(0)
		l := ImportLine{Row: len(lines) + 1, Line: line}
		field := func(name string) string {
			if i := col[name] - 1; i >= 0 && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		l.Email = field("email")
		l.Name = field("name")
		l.OrgRole = OrgRole(strings.ToLower(field("org_role")))
		for _, t := range strings.Split(field("teams"), ";") {
			if t = strings.TrimSpace(t); t != "" {
				l.Teams = append(l.Teams, t)
			}
		}
		if len(rec) > len(header) {
			l.Problem = fmt.Sprintf("the row has %d fields but the header has %d", len(rec), len(header))
		}
		lines = append(lines, l)
	}
	return lines, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return Errorf(EINVALIDCSV, "the file is not valid CSV: line %d, column %d: %v; nothing was imported", pe.Line, pe.Column, pe.Err)
	}
	return Errorf(EINVALIDCSV, "the file is not valid CSV: %v", err)
}
