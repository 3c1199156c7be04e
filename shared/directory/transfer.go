package directory

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mailroom/mailroom/shared/fault"
)

// Bulk transfer moves a whole directory in and out, for moving from another mail system: as one
// JSON Document, or as one CSV per kind of record.
//
// Field paths. Import names the fields at fault by their path in the document:
// "mailboxes.3.timeZone", "groups.1.members.0.address", "groups.0.posting.allow.2" (indexes count
// from 0). For a document read by ParseCSV they name the CSV line the record starts on (counting
// the header as line 1, as editors do) and the column: "line 7.forwardTo.1" (the second address in
// the forwardTo cell of line 7), "line 7.timeZone", or "line 7" for the whole row. Header problems
// are "line 1.<column>".

// Document is the whole directory as JSON.
type Document struct {
	Domains   []Domain        `json:"domains"`
	Mailboxes []Mailbox       `json:"mailboxes"`
	Aliases   []Alias         `json:"aliases"`
	Groups    []GroupDocument `json:"groups"`

	// src says which CSV lines the records of a document read by ParseCSV came from.
	src *csvSource
}

// GroupDocument is a group with its members.
type GroupDocument struct {
	Group
	Members []Member `json:"members"`
}

// ImportReport says what an import did, or would do when DryRun is set.
type ImportReport struct {
	DryRun    bool           `json:"dryRun"`
	Created   int            `json:"created"`
	Updated   int            `json:"updated"`
	Unchanged int            `json:"unchanged"`
	Results   []ImportResult `json:"results"`
}

// ImportResult is what happened to one record. Kind is domain, mailbox, alias, group or member;
// the ID of a member is "<group>/<member ref>" ("sales/mailbox:ana@example.com").
type ImportResult struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
}

// Outcomes of an imported record.
const (
	OutcomeCreated   = "created"
	OutcomeUpdated   = "updated"
	OutcomeUnchanged = "unchanged"
)

// FieldError is one problem found by Import or ParseCSV. The fault they return lists every one
// as Details["errors"] ([]FieldError); its Field is the first one's.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// maxFieldErrors bounds the errors listed in one answer, so that a file that is wrong on every
// line still gets an answer that fits in a response; Details["omitted"] counts the rest.
const maxFieldErrors = 1000

// exportPage is the page size of the store reads behind an export.
const exportPage = 1000

// CSV kinds.
const (
	CSVDomains   = "domains"
	CSVMailboxes = "mailboxes"
	CSVAliases   = "aliases"
	CSVGroups    = "groups"
	CSVMembers   = "members"
)

// csvColumns are the columns of each CSV kind, in the order ExportCSV writes them. ParseCSV takes
// them in any order but wants every one: an absent column would read as empty cells, and import
// would clear that field on every existing record.
var csvColumns = map[string][]string{
	CSVDomains:   {"name", "unknownRecipients", "catchAll"},
	CSVMailboxes: {"address", "displayName", "status", "forwardTo", "manager", "locale", "timeZone"},
	CSVAliases:   {"address", "target"},
	CSVGroups:    {"id", "name", "type", "description", "addresses", "owners", "postingPolicy", "allow", "moderators", "expires"},
	CSVMembers:   {"group", "kind", "member"},
}

var csvKinds = []string{CSVDomains, CSVMailboxes, CSVAliases, CSVGroups, CSVMembers}

// Export returns the whole directory. It reads it page by page and each group's members in one
// call; it is not a snapshot, so a change made during the export may show in part. Members carry
// only their kind and address or group: their status is the mailbox's. Admins and auditors.
func (s *Service) Export(ctx context.Context, c Call) (Document, error) {
	const op = "directory.Export"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return Document{}, err
	}
	doc := Document{Domains: []Domain{}, Mailboxes: []Mailbox{}, Aliases: []Alias{}, Groups: []GroupDocument{}}
	err := eachPage(ctx, s.Store.Domains, func(ds []Domain) error {
		doc.Domains = append(doc.Domains, ds...)
		return nil
	})
	if err == nil {
		err = eachPage(ctx, s.Store.Mailboxes, func(ms []Mailbox) error {
			doc.Mailboxes = append(doc.Mailboxes, ms...)
			return nil
		})
	}
	if err == nil {
		err = eachPage(ctx, s.Store.Aliases, func(as []Alias) error {
			doc.Aliases = append(doc.Aliases, as...)
			return nil
		})
	}
	if err == nil {
		err = s.eachGroup(ctx, func(g GroupDocument) error {
			doc.Groups = append(doc.Groups, g)
			return nil
		})
	}
	if err != nil {
		return Document{}, err
	}
	return doc, nil
}

// ExportCSV writes one kind of record as CSV with a header row, a page at a time. Admins and
// auditors.
func (s *Service) ExportCSV(ctx context.Context, c Call, kind string, w io.Writer) error {
	const op = "directory.ExportCSV"
	if err := c.Principal.allow(op, false, RoleAdmin, RoleAuditor); err != nil {
		return err
	}
	cols, ok := csvColumns[kind]
	if !ok {
		return fault.InvalidField(op, "kind", "must be one of %s", strings.Join(csvKinds, ", "))
	}
	cw := csv.NewWriter(w)
	// rows writes one page and flushes it, so that memory holds a page and a failing writer stops
	// the export early.
	rows := func(rs [][]string) error {
		if err := cw.WriteAll(rs); err != nil {
			return fault.Wrap(fault.Internal, op, err)
		}
		return nil
	}
	if err := rows([][]string{cols}); err != nil {
		return err
	}
	switch kind {
	case CSVDomains:
		return eachPage(ctx, s.Store.Domains, func(ds []Domain) error {
			rs := make([][]string, 0, len(ds))
			for _, d := range ds {
				rs = append(rs, []string{d.Name, d.UnknownRecipients, d.CatchAll})
			}
			return rows(rs)
		})
	case CSVMailboxes:
		return eachPage(ctx, s.Store.Mailboxes, func(ms []Mailbox) error {
			rs := make([][]string, 0, len(ms))
			for _, m := range ms {
				rs = append(rs, []string{m.Address, m.DisplayName, m.Status, joinList(m.ForwardTo), m.Manager, m.Locale, m.TimeZone})
			}
			return rows(rs)
		})
	case CSVAliases:
		return eachPage(ctx, s.Store.Aliases, func(as []Alias) error {
			rs := make([][]string, 0, len(as))
			for _, a := range as {
				rs = append(rs, []string{a.Address, a.Target})
			}
			return rows(rs)
		})
	case CSVGroups:
		return eachPage(ctx, s.Store.Groups, func(gs []Group) error {
			rs := make([][]string, 0, len(gs))
			for _, g := range gs {
				rs = append(rs, []string{g.ID, g.Name, g.Type, g.Description, joinList(g.Addresses), joinList(g.Owners),
					g.Posting.Policy, joinList(g.Posting.Allow), joinList(g.Posting.Moderators), g.Expires})
			}
			return rows(rs)
		})
	default: // CSVMembers
		return s.eachGroup(ctx, func(g GroupDocument) error {
			rs := make([][]string, 0, len(g.Members))
			for _, m := range g.Members {
				v := m.Address
				if m.Kind == KindGroup {
					v = m.Group
				}
				rs = append(rs, []string{g.ID, m.Kind, v})
			}
			return rows(rs)
		})
	}
}

// eachPage calls f with every page of a store listing.
func eachPage[T any](ctx context.Context, list func(context.Context, Page) ([]T, string, error), f func([]T) error) error {
	p := Page{Limit: exportPage}
	for {
		items, next, err := list(ctx, p)
		if err != nil {
			return err
		}
		if err := f(items); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		p.Cursor = next
	}
}

// eachGroup calls f with every group and its members, reading the members of a page of groups
// concurrently.
func (s *Service) eachGroup(ctx context.Context, f func(GroupDocument) error) error {
	return eachPage(ctx, s.Store.Groups, func(gs []Group) error {
		ids := make([]string, len(gs))
		for i, g := range gs {
			ids[i] = g.ID
		}
		members, err := s.allMembers(ctx, ids, "")
		if err != nil {
			return err
		}
		for _, g := range gs {
			ms := make([]Member, 0, len(members[g.ID]))
			for _, m := range members[g.ID] {
				ms = append(ms, Member{Kind: m.Kind, Address: m.Address, Group: m.Group})
			}
			slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Ref(), b.Ref()) })
			if err := f(GroupDocument{Group: g, Members: ms}); err != nil {
				return err
			}
		}
		return nil
	})
}

func joinList(vs []string) string { return strings.Join(vs, ";") }

// splitList reads a ";"-separated cell. A ";" inside a quoted local part ("a;b"@example.com)
// does not separate; blanks around entries and empty entries are dropped.
func splitList(v string) []string {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	start, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				add(v[start:i])
				start = i + 1
			}
		}
	}
	add(v[start:])
	return out
}

// csvSource remembers where the records of a document read from CSV came from.
type csvSource struct {
	kind string
	// lines[i] is the line record i starts on; for members, the line of Groups[i].Members[j] is
	// members[i][j].
	lines   []int
	members [][]int
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ParseCSV reads one CSV of one kind (domains, mailboxes, aliases, groups or members) into a
// Document for Import. The first row names the columns, in any order; every column of the kind is
// required and no other is allowed. Lists are separated by ";". A UTF-8 byte order mark is
// skipped. It checks the CSV's form, not the values: Import does, and names CSV lines in its
// errors for a document that came from here. A members CSV adds members to groups that exist;
// its groups are not records of their own.
func ParseCSV(kind string, r io.Reader) (Document, error) {
	const op = "directory.ParseCSV"
	cols, ok := csvColumns[kind]
	if !ok {
		return Document{}, fault.InvalidField(op, "kind", "must be one of %s", strings.Join(csvKinds, ", "))
	}
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	var errs fieldErrors
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		errs.add(lineField(1, ""), "the file is empty; the first line must name the columns: %s", strings.Join(cols, ","))
		return Document{}, errs.fault(op)
	}
	if err != nil {
		if !errs.addCSV(err) {
			return Document{}, fault.Wrap(fault.Internal, op, err)
		}
		return Document{}, errs.fault(op)
	}
	index := readHeader(&errs, kind, header)
	if len(errs) > 0 {
		return Document{}, errs.fault(op)
	}
	cr.FieldsPerRecord = len(header)

	src := &csvSource{kind: kind}
	doc := Document{src: src}
	groups := map[string]int{} // members: group id → index in doc.Groups
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !errs.addCSV(err) {
				return Document{}, fault.Wrap(fault.Internal, op, err)
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue // the next line is still readable
			}
			break
		}
		line, _ := cr.FieldPos(0)
		v := func(col string) string { return rec[index[col]] }
		switch kind {
		case CSVDomains:
			doc.Domains = append(doc.Domains, Domain{Name: v("name"), UnknownRecipients: v("unknownRecipients"), CatchAll: v("catchAll")})
		case CSVMailboxes:
			doc.Mailboxes = append(doc.Mailboxes, Mailbox{Address: v("address"), DisplayName: v("displayName"),
				Status: v("status"), ForwardTo: splitList(v("forwardTo")), Manager: v("manager"),
				Locale: v("locale"), TimeZone: v("timeZone")})
		case CSVAliases:
			doc.Aliases = append(doc.Aliases, Alias{Address: v("address"), Target: v("target")})
		case CSVGroups:
			doc.Groups = append(doc.Groups, GroupDocument{Group: Group{ID: v("id"), Name: v("name"), Type: v("type"),
				Description: v("description"), Addresses: splitList(v("addresses")), Owners: splitList(v("owners")),
				Posting: Posting{Policy: v("postingPolicy"), Allow: splitList(v("allow")), Moderators: splitList(v("moderators"))},
				Expires: v("expires")}})
		case CSVMembers:
			m := Member{Kind: v("kind"), Address: v("member")}
			if m.Kind == KindGroup {
				m.Group, m.Address = m.Address, ""
			}
			i, ok := groups[v("group")]
			if !ok {
				i = len(doc.Groups)
				groups[v("group")] = i
				doc.Groups = append(doc.Groups, GroupDocument{Group: Group{ID: v("group")}})
				src.members = append(src.members, nil)
			}
			doc.Groups[i].Members = append(doc.Groups[i].Members, m)
			src.members[i] = append(src.members[i], line)
			continue
		}
		src.lines = append(src.lines, line)
	}
	if len(errs) > 0 {
		return Document{}, errs.fault(op)
	}
	return doc, nil
}

// readHeader checks a header row and returns where each column is.
func readHeader(errs *fieldErrors, kind string, header []string) map[string]int {
	cols := csvColumns[kind]
	index := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			errs.add(lineField(1, ""), "column %d has no name", i+1)
		case !slices.Contains(cols, h):
			errs.add(lineField(1, h), "unknown column; the columns of %s are %s", kind, strings.Join(cols, ","))
		case hasKey(index, h):
			errs.add(lineField(1, h), "the column appears twice")
		default:
			index[h] = i
		}
	}
	for _, c := range cols {
		if !hasKey(index, c) {
			errs.add(lineField(1, c), "missing column; the columns of %s are %s", kind, strings.Join(cols, ","))
		}
	}
	return index
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

func lineField(line int, col string) string {
	if col == "" {
		return "line " + strconv.Itoa(line)
	}
	return "line " + strconv.Itoa(line) + "." + col
}

// csvColumn is the CSV column of a field path within a record ("posting.allow.2" → "allow.2").
var csvColumn = map[string]string{"posting.policy": "postingPolicy", "posting.allow": "allow", "posting.moderators": "moderators"}

// field turns a document path ("mailboxes.3.forwardTo.1") into a CSV one ("line 5.forwardTo.1").
func (s *csvSource) field(path string) string {
	parts := strings.Split(path, ".")
	if len(parts) < 2 {
		return path
	}
	i, err := strconv.Atoi(parts[1])
	if err != nil {
		return path
	}
	rest := parts[2:]
	if s.kind == CSVMembers {
		if i >= len(s.members) {
			return path
		}
		if len(rest) >= 2 && rest[0] == "members" {
			j, err := strconv.Atoi(rest[1])
			if err != nil || j >= len(s.members[i]) {
				return path
			}
			col := ""
			if len(rest) > 2 {
				col = rest[2]
				if col == "address" || col == "group" {
					col = "member"
				}
			}
			return lineField(s.members[i][j], col)
		}
		return lineField(s.members[i][0], "group")
	}
	if i >= len(s.lines) {
		return path
	}
	col := strings.Join(rest, ".")
	for from, to := range csvColumn {
		if col == from || strings.HasPrefix(col, from+".") {
			col = to + strings.TrimPrefix(col, from)
		}
	}
	return lineField(s.lines[i], col)
}

// fieldErrors collects every problem of a bulk operation.
type fieldErrors []FieldError

func (e *fieldErrors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// addFault adds an Invalid fault (from a normalize function) under prefix; other errors are
// returned, as they are not the input's fault.
func (e *fieldErrors) addFault(prefix string, err error) error {
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind != fault.Invalid {
		return err
	}
	field := prefix
	if fe.Field != "" {
		field += "." + fe.Field
	}
	e.add(field, "%s", fe.Message)
	return nil
}

// addCSV adds a CSV syntax error and reports whether err was one.
func (e *fieldErrors) addCSV(err error) bool {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return false
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		e.add(lineField(pe.StartLine, ""), "has a different number of columns than the header")
	} else {
		e.add(lineField(pe.Line, ""), "%v (at byte %d)", pe.Err, pe.Column)
	}
	return true
}

// fault is the Invalid error listing every problem.
func (e fieldErrors) fault(op string) error {
	list := []FieldError(e)
	details := map[string]any{}
	if len(list) > maxFieldErrors {
		details["omitted"] = len(list) - maxFieldErrors
		list = list[:maxFieldErrors]
	}
	details["errors"] = list
	msg := list[0].Detail
	if len(e) > 1 {
		msg += fmt.Sprintf(" (and %d more problems; see errors)", len(e)-1)
	}
	return &fault.Error{Kind: fault.Invalid, Op: op, Field: list[0].Field, Message: msg, Details: details}
}

// Import creates and updates the records of doc. Every record is checked first — its own fields,
// what it refers to in the document and in the directory, group cycles — and if any is wrong the
// error, of kind Invalid, lists every problem (see FieldError) and nothing changes. A record is
// reported for the first of its own fields that is wrong (the normalize functions stop there);
// what it refers to is checked once those are right. As in the service's own operations,
// references are checked for records that will be written, not for ones left unchanged.
//
// Then records are applied one by one through the service's operations, each authorised and
// audited: domains (without their catch-all address), mailboxes (a manager further on in the
// document is set once it exists), groups (without members), aliases, members, and last the
// domains' catch-all settings. A record absent from the directory is created; one that differs,
// ignoring read-only fields (version, times, unicodeName, targetKind, memberCount, a member's
// status), is updated with a merge patch of what differs, so a field left out takes its default
// as on create; one that is the same is not written. Import only adds: records and group members
// in the directory but not in the document stay. An address keeps its owner: a record may not
// take an address the directory gives to another, even one the document takes away from it. With
// dryRun it checks and reports without writing.
//
// Each write is atomic, the import as a whole is not: if a write fails (a concurrent change), the
// error names the record, the report lists the records handled before it, and importing the same
// document again finishes the job. Admins only.
func (s *Service) Import(ctx context.Context, c Call, doc Document, dryRun bool) (ImportReport, error) {
	const op = "directory.Import"
	if err := c.Principal.allow(op, true, RoleAdmin); err != nil {
		return ImportReport{}, err
	}
	im := &importer{s: s, op: op, src: doc.src, refsOnly: doc.src != nil && doc.src.kind == CSVMembers}
	if err := im.normalize(doc); err != nil {
		return ImportReport{}, err
	}
	if err := im.fetch(ctx); err != nil {
		return ImportReport{}, err
	}
	im.check()
	if err := im.checkCycles(ctx); err != nil {
		return ImportReport{}, err
	}
	if len(im.errs) > 0 {
		return ImportReport{}, im.invalid()
	}
	if dryRun {
		return newReport(true, im.results()), nil
	}
	return im.apply(ctx, c.internal())
}

// importer holds one import: the normalised document, what the directory holds of what it names,
// and the plan.
type importer struct {
	s        *Service
	op       string
	src      *csvSource
	refsOnly bool // the groups are only where members go (a members CSV)
	errs     fieldErrors

	doc Document // normalised; records that failed are left out of the plan (ok[...] false)
	ok  struct {
		domains, mailboxes, aliases, groups []bool
		members                             [][]bool
	}
	// What the document declares, including records that failed on other fields than their key,
	// so that references to them do not fail as well.
	docDomains, docMailboxes, docGroups map[string]bool
	docAddrs                            map[string]Owner

	// What the directory holds, read up front; a nil value means absent.
	domains   map[string]*Domain
	mailboxes map[string]*Mailbox
	groups    map[string]*Group
	aliases   map[string]*Alias
	owners    map[string]*Owner
	members   map[string]*Member // "<group>/<ref>"

	// The plan: the outcome of each record.
	out struct {
		domains, mailboxes, aliases, groups []string
		members                             [][]string
	}
}

func (im *importer) invalid() error {
	if im.src != nil {
		for i := range im.errs {
			im.errs[i].Field = im.src.field(im.errs[i].Field)
		}
		slices.SortStableFunc(im.errs, func(a, b FieldError) int { return lineOf(a.Field) - lineOf(b.Field) })
	}
	return im.errs.fault(im.op)
}

func lineOf(field string) int {
	rest, _ := strings.CutPrefix(field, "line ")
	n, _ := strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
	return n
}

func docPath(kind string, i int, more ...any) string {
	p := kind + "." + strconv.Itoa(i)
	for _, m := range more {
		p += "." + fmt.Sprint(m)
	}
	return p
}

func ownerName(o Owner) string { return o.Kind + " " + o.ID }

// claim records an address a record of the document uses.
func (im *importer) claim(addr string, o Owner, field string) {
	if prev, ok := im.docAddrs[addr]; ok && prev != o {
		im.errs.add(field, "%s is also the address of %s in this document", addr, ownerName(prev))
		return
	}
	im.docAddrs[addr] = o
}

// normalize checks every record's own fields and duplicates within the document.
func (im *importer) normalize(doc Document) error {
	op := im.op
	im.docDomains, im.docMailboxes, im.docGroups = map[string]bool{}, map[string]bool{}, map[string]bool{}
	im.docAddrs = map[string]Owner{}
	im.doc = Document{
		Domains:   make([]Domain, len(doc.Domains)),
		Mailboxes: make([]Mailbox, len(doc.Mailboxes)),
		Aliases:   make([]Alias, len(doc.Aliases)),
		Groups:    make([]GroupDocument, len(doc.Groups)),
	}
	im.ok.domains = make([]bool, len(doc.Domains))
	im.ok.mailboxes = make([]bool, len(doc.Mailboxes))
	im.ok.aliases = make([]bool, len(doc.Aliases))
	im.ok.groups = make([]bool, len(doc.Groups))
	im.ok.members = make([][]bool, len(doc.Groups))

	for i, d := range doc.Domains {
		d.Meta, d.UnicodeName = Meta{}, ""
		name, _, keyErr := NormalizeDomain(d.Name)
		if keyErr == nil && im.docDomains[name] {
			im.errs.add(docPath("domains", i, "name"), "%s is listed twice", name)
			continue
		}
		if keyErr == nil {
			im.docDomains[name] = true
		}
		if err := normalizeDomain(op, &d); err != nil {
			if err := im.errs.addFault(docPath("domains", i), err); err != nil {
				return err
			}
			continue
		}
		im.doc.Domains[i], im.ok.domains[i] = d, true
	}
	for i, m := range doc.Mailboxes {
		m.Meta = Meta{}
		addr, keyErr := NormalizeAddress(m.Address)
		if keyErr == nil && im.docMailboxes[addr] {
			im.errs.add(docPath("mailboxes", i, "address"), "%s is listed twice", addr)
			continue
		}
		if keyErr == nil {
			im.docMailboxes[addr] = true
			im.claim(addr, Owner{Kind: KindMailbox, ID: addr}, docPath("mailboxes", i, "address"))
		}
		if err := normalizeMailbox(op, &m); err != nil {
			if err := im.errs.addFault(docPath("mailboxes", i), err); err != nil {
				return err
			}
			continue
		}
		im.doc.Mailboxes[i], im.ok.mailboxes[i] = m, true
	}
	seenAliases := map[string]bool{}
	for i, a := range doc.Aliases {
		a.Meta, a.TargetKind, a.TargetID = Meta{}, "", ""
		addr, keyErr := NormalizeAddress(a.Address)
		if keyErr == nil && seenAliases[addr] {
			im.errs.add(docPath("aliases", i, "address"), "%s is listed twice", addr)
			continue
		}
		if keyErr == nil {
			seenAliases[addr] = true
			im.claim(addr, Owner{Kind: KindAlias, ID: addr}, docPath("aliases", i, "address"))
		}
		if err := normalizeAlias(op, &a); err != nil {
			if err := im.errs.addFault(docPath("aliases", i), err); err != nil {
				return err
			}
			continue
		}
		im.doc.Aliases[i], im.ok.aliases[i] = a, true
	}
	for i, gd := range doc.Groups {
		g := gd.Group
		g.Meta, g.MemberCount = Meta{}, 0
		im.doc.Groups[i].Members = make([]Member, len(gd.Members))
		im.ok.members[i] = make([]bool, len(gd.Members))
		switch {
		case im.refsOnly:
			if !groupID.MatchString(g.ID) {
				im.errs.add(docPath("groups", i, "id"), "%q is not a group id", g.ID)
				continue
			}
			im.doc.Groups[i].Group, im.ok.groups[i] = Group{ID: g.ID}, true
		default:
			id := g.ID
			if id == "" {
				id = GroupID(strings.TrimSpace(g.Name))
			}
			if groupID.MatchString(id) {
				if im.docGroups[id] {
					im.errs.add(docPath("groups", i, "id"), "%s is listed twice", id)
					continue
				}
				im.docGroups[id] = true
			}
			if err := normalizeGroup(op, &g); err != nil {
				if err := im.errs.addFault(docPath("groups", i), err); err != nil {
					return err
				}
				continue
			}
			for k, a := range g.Addresses {
				im.claim(a, Owner{Kind: KindGroup, ID: g.ID}, docPath("groups", i, "addresses", k))
			}
			im.doc.Groups[i].Group, im.ok.groups[i] = g, true
		}
		refs := map[string]bool{}
		for j, m := range gd.Members {
			m = Member{Kind: m.Kind, Address: m.Address, Group: m.Group}
			if err := normalizeMember(op, &m); err != nil {
				if err := im.errs.addFault(docPath("groups", i, "members", j), err); err != nil {
					return err
				}
				continue
			}
			if refs[m.Ref()] {
				im.errs.add(docPath("groups", i, "members", j), "%s is listed twice", m.Ref())
				continue
			}
			refs[m.Ref()] = true
			im.doc.Groups[i].Members[j], im.ok.members[i][j] = m, true
		}
	}
	return nil
}

// fetch reads, concurrently, everything the directory holds that the document names.
func (im *importer) fetch(ctx context.Context) error {
	domains, mailboxes, groups, aliases, owners := keySet{}, keySet{}, keySet{}, keySet{}, keySet{}
	for a := range im.docAddrs {
		owners.add(a)
		domains.add(DomainOf(a))
	}
	for i, d := range im.doc.Domains {
		if im.ok.domains[i] {
			domains.add(d.Name)
			if d.CatchAll != "" {
				domains.add(DomainOf(d.CatchAll))
				owners.add(d.CatchAll)
			}
		}
	}
	mailboxRef := func(a string) {
		if a != "" {
			mailboxes.add(a)
		}
	}
	for i, m := range im.doc.Mailboxes {
		if im.ok.mailboxes[i] {
			mailboxes.add(m.Address)
			mailboxRef(m.Manager)
		}
	}
	for i, a := range im.doc.Aliases {
		if im.ok.aliases[i] {
			aliases.add(a.Address)
			owners.add(a.Target)
		}
	}
	for i, gd := range im.doc.Groups {
		if im.ok.groups[i] {
			groups.add(gd.ID)
			for _, o := range gd.Owners {
				mailboxRef(o)
			}
			for _, o := range gd.Posting.Moderators {
				mailboxRef(o)
			}
		}
		for j, m := range gd.Members {
			if !im.ok.members[i][j] {
				continue
			}
			switch m.Kind {
			case KindMailbox:
				mailboxRef(m.Address)
			case KindExternal:
				domains.add(DomainOf(m.Address))
			case KindGroup:
				groups.add(m.Group)
			}
		}
	}
	var err error
	st := im.s.Store
	if im.domains, err = fetchAll(ctx, domains, st.Domain); err != nil {
		return err
	}
	if im.mailboxes, err = fetchAll(ctx, mailboxes, st.Mailbox); err != nil {
		return err
	}
	if im.groups, err = fetchAll(ctx, groups, st.Group); err != nil {
		return err
	}
	if im.aliases, err = fetchAll(ctx, aliases, st.Alias); err != nil {
		return err
	}
	if im.owners, err = fetchAll(ctx, owners, st.AddressOwner); err != nil {
		return err
	}
	// Memberships only matter, and are only read, for groups that exist already.
	members := keySet{}
	for i, gd := range im.doc.Groups {
		if !im.ok.groups[i] || im.groups[gd.ID] == nil {
			continue
		}
		for j, m := range gd.Members {
			if im.ok.members[i][j] {
				members.add(memberID(gd.ID, m))
			}
		}
	}
	im.members, err = fetchAll(ctx, members, func(ctx context.Context, k string) (Member, error) {
		id, ref, _ := strings.Cut(k, "/") // group ids have no "/"; addresses may
		return st.Member(ctx, id, ref)
	})
	return err
}

type keySet map[string]bool

func (s keySet) add(k string) { s[k] = true }

func memberID(group string, m Member) string { return group + "/" + m.Ref() }

// fetchAll reads the items named by keys with get, a few at a time; absent items map to nil.
func fetchAll[T any](ctx context.Context, keys keySet, get func(context.Context, string) (T, error)) (map[string]*T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(map[string]*T, len(keys))
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	sem := make(chan struct{}, fanOut)
	for k := range keys {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v, err := get(ctx, k)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out[k] = &v
			case fault.Is(err, fault.NotFound):
				out[k] = nil
			case first == nil:
				first = err
				cancel()
			}
		}()
	}
	wg.Wait()
	return out, first
}

func (im *importer) served(addr string) bool {
	d := DomainOf(addr)
	return im.docDomains[d] || im.domains[d] != nil
}

func (im *importer) isMailbox(addr string) bool {
	return im.docMailboxes[addr] || im.mailboxes[addr] != nil
}

// owner returns what an address belongs to once the document is imported.
func (im *importer) owner(addr string) (Owner, bool) {
	if o, ok := im.docAddrs[addr]; ok {
		return o, true
	}
	if o := im.owners[addr]; o != nil {
		if o.Kind == KindGroup && im.docGroups[o.ID] {
			return Owner{}, false // the document's version of the group gives it up
		}
		return *o, true
	}
	return Owner{}, false
}

// compareStored compares a record with what the directory holds, ignoring read-only fields.
func compareStored[T any](stored *T, v T) string {
	switch {
	case stored == nil:
		return OutcomeCreated
	case changedField(*stored, v, nil) != "":
		return OutcomeUpdated
	}
	return OutcomeUnchanged
}

// check plans each record and checks what the records to be written refer to, as the service's
// operations will when they are applied. Records left unchanged are not written, so not checked.
func (im *importer) check() {
	im.out.domains = make([]string, len(im.doc.Domains))
	im.out.mailboxes = make([]string, len(im.doc.Mailboxes))
	im.out.aliases = make([]string, len(im.doc.Aliases))
	im.out.groups = make([]string, len(im.doc.Groups))
	im.out.members = make([][]string, len(im.doc.Groups))

	for i, d := range im.doc.Domains {
		if !im.ok.domains[i] {
			continue
		}
		im.out.domains[i] = compareStored(im.domains[d.Name], d)
		if im.out.domains[i] == OutcomeUnchanged || d.CatchAll == "" || !im.served(d.CatchAll) {
			continue
		}
		if _, ok := im.owner(d.CatchAll); !ok {
			im.errs.add(docPath("domains", i, "catchAll"), "%s is not a mailbox, alias or group address", d.CatchAll)
		}
	}
	for i, m := range im.doc.Mailboxes {
		if !im.ok.mailboxes[i] {
			continue
		}
		stored := im.mailboxes[m.Address]
		im.out.mailboxes[i] = compareStored(stored, m)
		im.taken(m.Address, Owner{Kind: KindMailbox, ID: m.Address}, docPath("mailboxes", i, "address"))
		if stored != nil && stored.Manager == m.Manager {
			continue // UpdateMailbox checks references only when the manager changes
		}
		if !im.served(m.Address) {
			im.errs.add(docPath("mailboxes", i, "address"), "%s is not a Mailroom domain; add the domain first", DomainOf(m.Address))
		}
		if m.Manager != "" && !im.isMailbox(m.Manager) {
			im.errs.add(docPath("mailboxes", i, "manager"), "%s is not a mailbox", m.Manager)
		}
	}
	for i, gd := range im.doc.Groups {
		if !im.ok.groups[i] {
			continue
		}
		stored := im.groups[gd.ID]
		if im.refsOnly {
			if stored == nil {
				im.errs.add(docPath("groups", i, "id"), "no group %s", gd.ID)
				im.ok.groups[i] = false
			}
			continue
		}
		im.out.groups[i] = compareStored(stored, gd.Group)
		if im.out.groups[i] == OutcomeUnchanged {
			continue
		}
		before := Group{}
		if stored != nil {
			before = *stored
		}
		for k, a := range gd.Addresses {
			if slices.Contains(before.Addresses, a) {
				continue
			}
			if !im.served(a) {
				im.errs.add(docPath("groups", i, "addresses", k), "%s is not a Mailroom domain; add the domain first", DomainOf(a))
			}
			im.taken(a, Owner{Kind: KindGroup, ID: gd.ID}, docPath("groups", i, "addresses", k))
		}
		for k, o := range gd.Owners {
			if !slices.Contains(before.Owners, o) && !im.isMailbox(o) {
				im.errs.add(docPath("groups", i, "owners", k), "%s is not a mailbox", o)
			}
		}
		for k, o := range gd.Posting.Moderators {
			if !slices.Contains(before.Posting.Moderators, o) && !im.isMailbox(o) {
				im.errs.add(docPath("groups", i, "posting", "moderators", k), "%s is not a mailbox", o)
			}
		}
	}
	for i, a := range im.doc.Aliases {
		if !im.ok.aliases[i] {
			continue
		}
		im.out.aliases[i] = compareStored(im.aliases[a.Address], a)
		im.taken(a.Address, Owner{Kind: KindAlias, ID: a.Address}, docPath("aliases", i, "address"))
		if im.out.aliases[i] == OutcomeUnchanged {
			continue
		}
		if !im.served(a.Address) {
			im.errs.add(docPath("aliases", i, "address"), "%s is not a Mailroom domain; add the domain first", DomainOf(a.Address))
		}
		switch o, ok := im.owner(a.Target); {
		case !ok:
			im.errs.add(docPath("aliases", i, "target"), "%s is not a mailbox or group address", a.Target)
		case o.Kind == KindAlias:
			im.errs.add(docPath("aliases", i, "target"), "%s is an alias; point at the mailbox or group it belongs to", a.Target)
		}
	}
	for i, gd := range im.doc.Groups {
		im.out.members[i] = make([]string, len(gd.Members))
		if !im.ok.groups[i] {
			continue
		}
		exists := im.groups[gd.ID] != nil
		for j, m := range gd.Members {
			if !im.ok.members[i][j] {
				continue
			}
			if exists && im.members[memberID(gd.ID, m)] != nil {
				im.out.members[i][j] = OutcomeUnchanged
				continue
			}
			im.out.members[i][j] = OutcomeCreated
			switch m.Kind {
			case KindMailbox:
				if !im.isMailbox(m.Address) {
					im.errs.add(docPath("groups", i, "members", j, "address"), "%s is not a mailbox", m.Address)
				}
			case KindExternal:
				if im.served(m.Address) {
					im.errs.add(docPath("groups", i, "members", j, "address"), "%s is on a Mailroom domain; add its mailbox or group instead", m.Address)
				}
			case KindGroup:
				if !im.docGroups[m.Group] && im.groups[m.Group] == nil {
					im.errs.add(docPath("groups", i, "members", j, "group"), "no group %s", m.Group)
				}
			}
		}
	}
}

// taken refuses an address the directory has given to something else. Import does not move an
// address: a mailbox cannot take over an address that a group of the same document gives up,
// since mailboxes are created before groups are updated.
func (im *importer) taken(addr string, o Owner, field string) {
	if st := im.owners[addr]; st != nil && *st != o {
		im.errs.add(field, "%s is already in use by %s", addr, ownerName(*st))
	}
}

// checkCycles refuses group memberships that, with those the directory has, would make a cycle.
// It reads the group graph reachable from the groups the document adds as members, one level at a
// time, then walks it depth first: an edge back to a group on the current path closes a cycle, and
// is blamed on a membership of the document on that cycle.
func (im *importer) checkCycles(ctx context.Context) error {
	type edge struct{ to, path string }
	added := map[string][]edge{}
	var sources, level []string
	queued := map[string]bool{}
	for i, gd := range im.doc.Groups {
		if !im.ok.groups[i] {
			continue
		}
		for j, m := range gd.Members {
			if m.Kind != KindGroup || im.out.members[i][j] != OutcomeCreated {
				continue
			}
			if len(added[gd.ID]) == 0 {
				sources = append(sources, gd.ID)
			}
			added[gd.ID] = append(added[gd.ID], edge{m.Group, docPath("groups", i, "members", j)})
			if !queued[m.Group] {
				queued[m.Group] = true
				level = append(level, m.Group)
			}
		}
	}
	if len(sources) == 0 {
		return nil
	}
	stored := map[string][]string{}
	for len(level) > 0 {
		var read []string
		for _, id := range level {
			if g, known := im.groups[id]; !known || g != nil { // new groups have no stored members
				read = append(read, id)
			}
		}
		sub, err := im.s.subgroups(ctx, read)
		if err != nil {
			return err
		}
		var next []string
		for _, id := range level {
			stored[id] = sub[id]
			for _, to := range sub[id] {
				if !queued[to] {
					queued[to] = true
					next = append(next, to)
				}
			}
			for _, e := range added[id] {
				if !queued[e.to] {
					queued[e.to] = true
					next = append(next, e.to)
				}
			}
		}
		level = next
	}

	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string // the current path
	var via []string   // via[k] is the document path of the edge into stack[k], "" for a stored one
	blamed := map[string]bool{}
	var visit func(id, through string)
	visit = func(id, through string) {
		color[id] = grey
		stack, via = append(stack, id), append(via, through)
		next := slices.Clone(added[id])
		for _, to := range stored[id] {
			next = append(next, edge{to: to})
		}
		for _, e := range next {
			switch color[e.to] {
			case white:
				visit(e.to, e.path)
			case grey:
				k := slices.Index(stack, e.to)
				cycle := append(slices.Clone(stack[k:]), e.to)
				edges := append(slices.Clone(via[k+1:]), e.path) // edges[n] leads from cycle[n] to cycle[n+1]
				n := len(edges) - 1
				for n >= 0 && edges[n] == "" {
					n--
				}
				if n < 0 || blamed[edges[n]] {
					continue // a cycle the directory has already; not this import's doing
				}
				blamed[edges[n]] = true
				// Start the cycle at the group the blamed membership is added to.
				rot := append(slices.Clone(cycle[n:len(cycle)-1]), cycle[:n+1]...)
				im.errs.add(edges[n]+".group", "adding %s to %s would make a cycle: %s", rot[1], rot[0], joinPath(rot))
			}
		}
		color[id] = black
		stack, via = stack[:len(stack)-1], via[:len(via)-1]
	}
	for _, id := range sources {
		if color[id] == white {
			visit(id, "")
		}
	}
	return nil
}

func (im *importer) results() []ImportResult {
	var rs []ImportResult
	for i, d := range im.doc.Domains {
		rs = append(rs, ImportResult{Kind: KindDomain, ID: d.Name, Outcome: im.out.domains[i]})
	}
	for i, m := range im.doc.Mailboxes {
		rs = append(rs, ImportResult{Kind: KindMailbox, ID: m.Address, Outcome: im.out.mailboxes[i]})
	}
	if !im.refsOnly {
		for i, gd := range im.doc.Groups {
			rs = append(rs, ImportResult{Kind: KindGroup, ID: gd.ID, Outcome: im.out.groups[i]})
		}
	}
	for i, a := range im.doc.Aliases {
		rs = append(rs, ImportResult{Kind: KindAlias, ID: a.Address, Outcome: im.out.aliases[i]})
	}
	for i, gd := range im.doc.Groups {
		for j, m := range gd.Members {
			rs = append(rs, ImportResult{Kind: "member", ID: memberID(gd.ID, m), Outcome: im.out.members[i][j]})
		}
	}
	return rs
}

func newReport(dryRun bool, rs []ImportResult) ImportReport {
	r := ImportReport{DryRun: dryRun, Results: rs}
	if r.Results == nil {
		r.Results = []ImportResult{}
	}
	for _, x := range rs {
		switch x.Outcome {
		case OutcomeCreated:
			r.Created++
		case OutcomeUpdated:
			r.Updated++
		case OutcomeUnchanged:
			r.Unchanged++
		}
	}
	return r
}

// apply writes the plan in the order that lets references resolve, one service call per change.
func (im *importer) apply(ctx context.Context, c Call) (ImportReport, error) {
	s := im.s
	var done []ImportResult
	failed := func(kind, id string, err error) (ImportReport, error) {
		msg := fault.MessageOf(err)
		if msg == "" {
			msg = "the write failed"
		}
		return newReport(false, done), &fault.Error{Kind: fault.KindOf(err), Op: im.op,
			Message: fmt.Sprintf("%s %s: %s; the records before it were imported: import the same document again to finish", kind, id, msg),
			Err:     err, Details: map[string]any{"record": kind + ":" + id}}
	}

	// Domains first, without catch-all addresses: those may be on the domain itself.
	firsts := make([]Domain, len(im.doc.Domains))
	for i, d := range im.doc.Domains {
		if im.out.domains[i] == OutcomeCreated {
			first := d
			first.CatchAll = ""
			if first.UnknownRecipients == UnknownCatchAll {
				first.UnknownRecipients = UnknownBounce
			}
			var err error
			if firsts[i], err = s.CreateDomain(ctx, c, first); err != nil {
				return failed(KindDomain, d.Name, err)
			}
		}
		done = append(done, ImportResult{Kind: KindDomain, ID: d.Name, Outcome: im.out.domains[i]})
	}

	// Mailboxes, in document order; a manager that is a mailbox further on is set afterwards.
	have := func(addr string) bool { return im.mailboxes[addr] != nil }
	created := map[string]bool{}
	type later struct{ addr, manager string }
	var managers []later
	for i, m := range im.doc.Mailboxes {
		stored := im.mailboxes[m.Address]
		step := m
		newManager := im.out.mailboxes[i] == OutcomeCreated ||
			(im.out.mailboxes[i] == OutcomeUpdated && stored.Manager != m.Manager)
		if newManager && m.Manager != "" && !have(m.Manager) && !created[m.Manager] {
			step.Manager = ""
			if stored != nil {
				step.Manager = stored.Manager
			}
			managers = append(managers, later{m.Address, m.Manager})
		}
		var err error
		switch im.out.mailboxes[i] {
		case OutcomeCreated:
			_, err = s.CreateMailbox(ctx, c, step)
			created[m.Address] = true
		case OutcomeUpdated:
			if changedField(*stored, step, nil) != "" {
				_, err = s.UpdateMailbox(ctx, c, m.Address, patchFor(*stored, step))
			}
		}
		if err != nil {
			return failed(KindMailbox, m.Address, err)
		}
		done = append(done, ImportResult{Kind: KindMailbox, ID: m.Address, Outcome: im.out.mailboxes[i]})
	}
	for _, l := range managers {
		if _, err := s.UpdateMailbox(ctx, c, l.addr, marshal(map[string]string{"manager": l.manager})); err != nil {
			return failed(KindMailbox, l.addr, err)
		}
	}

	if !im.refsOnly {
		for i, gd := range im.doc.Groups {
			var err error
			switch im.out.groups[i] {
			case OutcomeCreated:
				_, err = s.CreateGroup(ctx, c, gd.Group)
			case OutcomeUpdated:
				_, err = s.UpdateGroup(ctx, c, gd.ID, patchFor(*im.groups[gd.ID], gd.Group))
			}
			if err != nil {
				return failed(KindGroup, gd.ID, err)
			}
			done = append(done, ImportResult{Kind: KindGroup, ID: gd.ID, Outcome: im.out.groups[i]})
		}
	}

	for i, a := range im.doc.Aliases {
		var err error
		switch im.out.aliases[i] {
		case OutcomeCreated:
			_, err = s.CreateAlias(ctx, c, a)
		case OutcomeUpdated:
			_, err = s.UpdateAlias(ctx, c, a.Address, patchFor(*im.aliases[a.Address], a))
		}
		if err != nil {
			return failed(KindAlias, a.Address, err)
		}
		done = append(done, ImportResult{Kind: KindAlias, ID: a.Address, Outcome: im.out.aliases[i]})
	}

	for i, gd := range im.doc.Groups {
		for j, m := range gd.Members {
			out := im.out.members[i][j]
			if out == OutcomeCreated {
				_, added, err := s.AddMember(ctx, c, gd.ID, m)
				if err != nil {
					return failed("member", memberID(gd.ID, m), err)
				}
				if !added {
					out = OutcomeUnchanged // someone added it in the meantime
				}
			}
			done = append(done, ImportResult{Kind: "member", ID: memberID(gd.ID, m), Outcome: out})
		}
	}

	// Last, domains as the document has them, now that catch-all addresses exist.
	for i, d := range im.doc.Domains {
		var before Domain
		switch im.out.domains[i] {
		case OutcomeCreated:
			before = firsts[i]
		case OutcomeUpdated:
			before = *im.domains[d.Name]
		default:
			continue
		}
		if changedField(before, d, nil) == "" {
			continue
		}
		if _, err := s.UpdateDomain(ctx, c, d.Name, patchFor(before, d)); err != nil {
			return failed(KindDomain, d.Name, err)
		}
	}
	return newReport(false, done), nil
}

// patchFor is the JSON merge patch that turns before into after, leaving read-only fields out.
// It names only what differs, so a concurrent change to another field survives.
func patchFor[T any](before, after T) []byte {
	var b, a map[string]any
	_ = json.Unmarshal(marshal(before), &b)
	_ = json.Unmarshal(marshal(after), &a)
	for _, k := range readOnlyFields {
		delete(b, k)
		delete(a, k)
	}
	return marshal(mergeDiff(b, a))
}

func mergeDiff(before, after map[string]any) map[string]any {
	out := map[string]any{}
	for k := range before {
		if _, ok := after[k]; !ok {
			out[k] = nil
		}
	}
	for k, av := range after {
		bv, ok := before[k]
		bm, bIsMap := bv.(map[string]any)
		am, aIsMap := av.(map[string]any)
		switch {
		case ok && bIsMap && aIsMap:
			if d := mergeDiff(bm, am); len(d) > 0 {
				out[k] = d
			}
		case !ok || !reflect.DeepEqual(bv, av):
			out[k] = av
		}
	}
	return out
}
