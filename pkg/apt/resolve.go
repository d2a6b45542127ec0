package apt

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"pault.ag/go/debian/dependency"

	"github.com/reprobuild/repro/pkg/fault"
)

// Resolve returns the packages to install for wanted: their Depends and
// Pre-Depends closure (never Recommends), less what installed already
// holds (the base's status and earlier layers), sorted by name, each a
// copy of the index's package with RequiredBy set. An Index may be used
// by several Resolve calls at once. prefer names the provider to take for a virtual package.
//
// The rules, in order, for each dependency:
//
//   - A relation already satisfied by an installed or selected package
//     (by name, or by a Provides whose version fits) needs nothing.
//   - A single-alternative relation takes the candidate (highest version
//     across sources and suites) of the named package, when it meets the
//     version constraint; otherwise a provider (below).
//   - OR-groups wait until every single-alternative relation reachable
//     so far is resolved, so that an alternative pulled in anyway is taken;
//     then, if none is satisfied yet, the first installable alternative
//     from the left is taken.
//   - A virtual name takes its provider when there is one, or the one that
//     prefer names; several providers and no preference is an error that
//     lists them. Only candidates provide: an old version's Provides count
//     for nothing.
//   - name:any needs a Multi-Arch: allowed package (or a provider);
//     name:native and name:<arch> mean the index's architecture.
//
// Finally, no two packages of the result and installed may conflict
// (Conflicts, Breaks) with each other. Errors are fault.BadInput.
func (idx *Index) Resolve(wanted []string, installed []*Package, prefer map[string]string) ([]*Package, error) {
	res, err := idx.Solve(wanted, installed, ResolveOptions{Prefer: prefer})
	if err != nil {
		return nil, err
	}
	return res.Packages, nil
}

// ResolveOptions tune Solve.
type ResolveOptions struct {
	// Prefer names the provider to take for a virtual package, over
	// apt's own choice.
	Prefer map[string]string
	// Exclude names packages never to install: a relation that names one
	// counts as satisfied (the user knows the image does without it).
	Exclude []string
}

// Resolution is what Solve found.
type Resolution struct {
	// Packages are the packages to install, as Resolve returns them.
	Packages []*Package
	// Choices are the virtual packages with several providers, and the
	// provider taken, sorted by virtual name.
	Choices []Choice
	// Excluded are the excluded packages that something depended on,
	// sorted by name.
	Excluded []Exclusion
}

// Choice is the provider taken for a virtual package that several
// packages provide.
type Choice struct {
	Virtual  string `json:"virtual"`
	Provider string `json:"provider"`
	// Providers are all the providers, in the order apt ranks them.
	Providers []string `json:"providers"`
	// Reason says which rule decided: "apt.prefer", or apt's rule that
	// set the first provider before the second ("Essential: yes",
	// "Priority: required over optional", "apt's package order").
	Reason string `json:"reason"`
}

// Exclusion is an excluded package that the closure would have held.
type Exclusion struct {
	Name string `json:"name"`
	// RequiredBy names the selected packages whose relations named it.
	RequiredBy []string `json:"requiredBy"`
}

// Solve is Resolve with options; it also reports the providers chosen
// and the exclusions used.
func (idx *Index) Solve(wanted []string, installed []*Package, o ResolveOptions) (*Resolution, error) {
	r := &resolver{
		idx:        idx,
		prefer:     o.Prefer,
		installed:  map[string]*Package{},
		selected:   map[string]*Package{},
		provided:   map[string][]provision{},
		requiredBy: map[string]map[string]bool{},
		exclude:    map[string]*Package{},
		choices:    map[string]Choice{},
	}
	for _, name := range o.Exclude {
		r.exclude[name] = &Package{Name: name}
	}
	for _, p := range installed {
		if _, err := p.relations(); err != nil {
			return nil, fault.Bad(err)
		}
		r.installed[p.Name] = p
		r.addProvides(p)
	}
	names := append([]string(nil), wanted...)
	sort.Strings(names)
	for i, name := range names {
		if i > 0 && names[i-1] == name {
			continue
		}
		poss, err := parseWanted(name)
		if err != nil {
			return nil, fault.Bad(err)
		}
		if _, ok := r.exclude[poss.Name]; ok {
			return nil, fault.Bad(fmt.Errorf("package %s is both asked for and excluded", name))
		}
		if r.satisfied(poss) != nil {
			continue
		}
		p, err := r.chooseWanted(poss)
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("package %s: %w", name, err))
		}
		if prev, ok := r.selected[p.Name]; ok && prev != p {
			return nil, fault.Bad(fmt.Errorf("package %s: %s is asked for too", name, prev))
		}
		r.add(p, "")
	}
	if err := r.run(); err != nil {
		return nil, fault.Bad(err)
	}
	if err := r.checkConflicts(); err != nil {
		return nil, fault.Bad(err)
	}
	res := &Resolution{Packages: make([]*Package, 0, len(r.selected))}
	for _, name := range sortedKeys(r.selected) {
		p := *r.selected[name] // a copy: the index's packages stay as read
		p.RequiredBy = sortedKeys(r.requiredBy[name])
		res.Packages = append(res.Packages, &p)
	}
	for _, name := range sortedKeys(r.choices) {
		// Only choices whose provider is still in the result count.
		if c := r.choices[name]; r.selected[c.Provider] != nil {
			res.Choices = append(res.Choices, c)
		}
	}
	for _, name := range sortedKeys(r.exclude) {
		if by := r.requiredBy[name]; len(by) > 0 {
			res.Excluded = append(res.Excluded, Exclusion{Name: name, RequiredBy: sortedKeys(by)})
		}
	}
	return res, nil
}

// parseWanted reads a name as the spec gives it: "nginx", or with a
// version constraint "nginx (>= 1.22)" or "nginx=1.22.1-9".
func parseWanted(s string) (dependency.Possibility, error) {
	s = strings.TrimSpace(s)
	if name, v, ok := strings.Cut(s, "="); ok && !strings.Contains(name, "(") {
		s = name + " (= " + v + ")"
	}
	d, err := dependency.Parse(s)
	if err != nil || len(d.Relations) != 1 || len(d.Relations[0].Possibilities) != 1 {
		return dependency.Possibility{}, fmt.Errorf("%q is not a package name (optionally with a version: name=1.2-3)", s)
	}
	return d.Relations[0].Possibilities[0], nil
}

type resolver struct {
	idx        *Index
	prefer     map[string]string
	installed  map[string]*Package
	selected   map[string]*Package
	order      []*Package             // selected, in the order taken; the work queue
	next       int                    // the next package of order to expand
	provided   map[string][]provision // by installed and selected packages
	pending    []pendingOr
	requiredBy map[string]map[string]bool
	exclude    map[string]*Package // stand-ins that satisfy any relation naming them
	choices    map[string]Choice
}

type pendingOr struct {
	from *Package
	rel  dependency.Relation
}

func (r *resolver) addProvides(p *Package) {
	provs, err := p.provisions()
	if err != nil {
		return
	}
	for _, pr := range provs {
		r.provided[pr.name] = append(r.provided[pr.name], pr)
	}
}

func (r *resolver) add(p *Package, by string) {
	if by != "" {
		r.need(p.Name, by)
	}
	if _, ok := r.selected[p.Name]; ok {
		return
	}
	r.selected[p.Name] = p
	r.order = append(r.order, p)
	r.addProvides(p)
}

func (r *resolver) need(name, by string) {
	if name == by {
		return
	}
	if r.requiredBy[name] == nil {
		r.requiredBy[name] = map[string]bool{}
	}
	r.requiredBy[name][by] = true
}

// run expands selected packages until every relation is resolved.
func (r *resolver) run() error {
	for {
		for r.next < len(r.order) {
			p := r.order[r.next]
			r.next++
			rel, err := p.relations()
			if err != nil {
				return err
			}
			for _, group := range [][]dependency.Relation{rel.preDepends, rel.depends} {
				for _, d := range group {
					if len(d.Possibilities) > 1 {
						r.pending = append(r.pending, pendingOr{from: p, rel: d})
						continue
					}
					if err := r.resolveRelation(p, d); err != nil {
						return err
					}
				}
			}
		}
		if len(r.pending) == 0 {
			return nil
		}
		or := r.pending[0]
		r.pending = r.pending[1:]
		if err := r.resolveRelation(or.from, or.rel); err != nil {
			return err
		}
	}
}

// resolveRelation satisfies one relation of from.
func (r *resolver) resolveRelation(from *Package, d dependency.Relation) error {
	for _, poss := range d.Possibilities {
		if s := r.satisfied(poss); s != nil {
			if _, sel := r.selected[s.Name]; sel {
				r.need(s.Name, from.Name)
			}
			return nil
		}
	}
	for _, poss := range d.Possibilities {
		if x, ok := r.exclude[poss.Name]; ok {
			r.need(x.Name, from.Name)
			return nil
		}
	}
	var reasons []string
	for _, poss := range d.Possibilities {
		p, err := r.choose(poss, from.Name)
		if err == nil {
			if prev, ok := r.selected[p.Name]; ok && prev != p {
				err = fmt.Errorf("%s is selected, and only one version can be", prev)
			}
		}
		if err == nil {
			r.add(p, from.Name)
			return nil
		}
		var amb *ambiguousError
		if errors.As(err, &amb) {
			return fmt.Errorf("%s depends on %s: %w", from, relationString(d), err)
		}
		reasons = append(reasons, possibilityString(poss)+": "+err.Error())
	}
	return fmt.Errorf("%s depends on %s, which cannot be installed: %s", from, relationString(d), strings.Join(reasons, "; "))
}

// satisfied returns an installed or selected package that satisfies poss.
func (r *resolver) satisfied(poss dependency.Possibility) *Package {
	q := archQualifier(poss)
	if q != "" && q != "any" && q != "native" && q != r.idx.Arch {
		return nil
	}
	for _, m := range []map[string]*Package{r.selected, r.installed} {
		if p, ok := m[poss.Name]; ok && satisfies(p.ver, poss.Version) && (q != "any" || p.MultiArch == "allowed") {
			return p
		}
	}
	// Provides, in a fixed order: selected before installed, then by name.
	var best *Package
	for _, pr := range r.provided[poss.Name] {
		if !providesFit(pr, poss.Version) {
			continue
		}
		if best == nil || r.rank(pr.by) < r.rank(best) || (r.rank(pr.by) == r.rank(best) && pr.by.Name < best.Name) {
			best = pr.by
		}
	}
	return best
}

func (r *resolver) rank(p *Package) int {
	if _, ok := r.selected[p.Name]; ok {
		return 0
	}
	return 1
}

// providesFit reports whether a provision meets a version constraint: an
// unversioned Provides meets only an unversioned dependency.
func providesFit(pr provision, rel *dependency.VersionRelation) bool {
	if rel == nil {
		return true
	}
	if pr.version == "" {
		return false
	}
	return satisfies(pr.ver, rel)
}

// ambiguousError is a virtual package with several providers and no
// preference.
type ambiguousError struct {
	name       string
	candidates []string
}

func (e *ambiguousError) Error() string {
	return fmt.Sprintf("%s is a virtual package provided by %s; choose one in apt.prefer, like prefer: {%s: %s}",
		e.name, strings.Join(e.candidates, ", "), e.name, e.candidates[0])
}

// priorityRank is apt's number for a Priority field: lower is more
// important. A missing field is 0 (apt leaves it unset, which ranks
// first); a word apt does not know is extra.
func priorityRank(p string) int {
	switch strings.ToLower(p) {
	case "":
		return 0
	case "required":
		return 1
	case "important":
		return 2
	case "standard":
		return 3
	case "optional":
		return 4
	}
	return 5
}

// rankProviders sorts the providers of a virtual package the way apt's
// depcache does (CompareProviders in apt-pkg/depcache.cc, apt 2.6): a
// package of the virtual name's own name first, then Essential: yes, then
// Important: yes, then the more important Priority, then the package that
// apt's cache created last (the higher ID: here, the later first mention
// in the indexes). Installed providers never get here: they satisfy the
// relation already. It returns the rule that put the first before the
// second.
func (r *resolver) rankProviders(target string, list []*Package) string {
	before := func(a, b *Package) (bool, string) {
		switch {
		case (a.Name == target) != (b.Name == target):
			return a.Name == target, "the package of the virtual name itself"
		case a.Essential != b.Essential:
			return a.Essential, "Essential: yes"
		case a.Important != b.Important:
			return a.Important, "Important: yes"
		case priorityRank(a.Priority) != priorityRank(b.Priority):
			return priorityRank(a.Priority) < priorityRank(b.Priority), fmt.Sprintf("Priority: %s over %s", a.Priority, b.Priority)
		}
		ia, ib := r.idx.ids[a.Name], r.idx.ids[b.Name]
		if ia != ib {
			return ia > ib, "apt's package order (the provider named last in the indexes)"
		}
		return a.Name < b.Name, "name"
	}
	sort.SliceStable(list, func(i, j int) bool {
		ok, _ := before(list[i], list[j])
		return ok
	})
	_, why := before(list[0], list[1])
	return why
}

// chooseWanted picks the package for a name the caller asked for: with a
// version constraint, the highest version that meets it, even when it is
// not the candidate (as apt-get install name=version does).
func (r *resolver) chooseWanted(poss dependency.Possibility) (*Package, error) {
	if poss.Version != nil && archQualifier(poss) == "" {
		for _, p := range r.idx.byName[poss.Name] {
			if satisfies(p.ver, poss.Version) {
				if _, err := p.relations(); err != nil {
					return nil, err
				}
				return p, nil
			}
		}
	}
	return r.choose(poss, "")
}

// choose picks the package that installs poss: the real package's
// candidate first, then a provider.
func (r *resolver) choose(poss dependency.Possibility, from string) (*Package, error) {
	q := archQualifier(poss)
	if q != "" && q != "any" && q != "native" && q != r.idx.Arch {
		return nil, fmt.Errorf("architecture %s is not the one being installed (%s)", q, r.idx.Arch)
	}
	var why string
	if c, ok := r.idx.candidates[poss.Name]; ok {
		switch {
		case !satisfies(c.ver, poss.Version):
			why = fmt.Sprintf("the newest version is %s", c.Version)
		case q == "any" && c.MultiArch != "allowed":
			why = fmt.Sprintf("%s is not Multi-Arch: allowed", c)
		default:
			if _, err := c.relations(); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	seen := map[string]*Package{}
	for _, pr := range r.idx.providers[poss.Name] {
		if providesFit(pr, poss.Version) {
			seen[pr.by.Name] = pr.by
		}
	}
	names := sortedKeys(seen)
	switch {
	case len(names) == 1:
		return seen[names[0]], nil
	case len(names) > 1:
		list := make([]*Package, 0, len(names))
		for _, n := range names {
			if _, ok := r.exclude[n]; !ok {
				list = append(list, seen[n])
			}
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("every provider of %s (%s) is excluded", poss.Name, strings.Join(names, ", "))
		}
		reason := r.rankProviders(poss.Name, list)
		ordered := make([]string, len(list))
		for i, p := range list {
			ordered[i] = p.Name
		}
		pick := list[0]
		if want, ok := r.prefer[poss.Name]; ok {
			p, ok := seen[want]
			if !ok {
				return nil, fmt.Errorf("apt.prefer names %s for %s, but its providers are %s", want, poss.Name, strings.Join(names, ", "))
			}
			pick, reason = p, "apt.prefer"
		}
		if _, done := r.choices[poss.Name]; !done {
			r.choices[poss.Name] = Choice{Virtual: poss.Name, Provider: pick.Name, Providers: ordered, Reason: reason}
		}
		return pick, nil
	}
	if why != "" {
		return nil, errors.New(why)
	}
	if len(r.idx.providers[poss.Name]) > 0 {
		return nil, fmt.Errorf("no provider of %s meets the version", poss.Name)
	}
	if vs := r.idx.byName[poss.Name]; len(vs) == 0 {
		if from == "" {
			if near := r.idx.nearNames(poss.Name); len(near) > 0 {
				return nil, fmt.Errorf("no such package in the sources; did you mean %s?", strings.Join(near, " or "))
			}
		}
		return nil, errors.New("no such package in the sources")
	}
	return nil, errors.New("not installable")
}

// checkConflicts fails when two packages of the result and installed
// conflict or break each other. Conflicts among installed packages alone
// are the base's business.
func (r *resolver) checkConflicts() error {
	all := map[string]*Package{}
	for n, p := range r.installed {
		all[n] = p
	}
	for n, p := range r.selected {
		all[n] = p
	}
	var problems []string
	for _, name := range sortedKeys(all) {
		p := all[name]
		rel, err := p.relations()
		if err != nil {
			return err
		}
		for _, kind := range []struct {
			field string
			rels  []dependency.Relation
		}{{"conflicts with", rel.conflicts}, {"breaks", rel.breaks}} {
			for _, d := range kind.rels {
				for _, poss := range d.Possibilities {
					for _, other := range r.matching(all, poss) {
						if other.Name == p.Name {
							continue // Provides+Conflicts on itself: the usual idiom
						}
						_, pSel := r.selected[p.Name]
						_, oSel := r.selected[other.Name]
						if !pSel && !oSel {
							continue
						}
						problems = append(problems, fmt.Sprintf("%s %s %s (%s)", p, kind.field, possibilityString(poss), describeOrigin(other, r.installed)))
					}
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the packages cannot be installed together: %s", strings.Join(problems, "; "))
	}
	return nil
}

func describeOrigin(p *Package, installed map[string]*Package) string {
	if i, ok := installed[p.Name]; ok && i == p {
		return p.String() + " is installed"
	}
	return p.String() + " is selected"
}

// matching returns the packages of all that poss names, directly or by
// Provides.
func (r *resolver) matching(all map[string]*Package, poss dependency.Possibility) []*Package {
	var out []*Package
	if p, ok := all[poss.Name]; ok && satisfies(p.ver, poss.Version) {
		out = append(out, p)
	}
	for _, name := range sortedKeys(all) {
		p := all[name]
		provs, err := p.provisions()
		if err != nil {
			continue
		}
		for _, pr := range provs {
			if pr.name == poss.Name && providesFit(pr, poss.Version) && p.Name != poss.Name {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// nearNames returns up to three package or virtual names of the index
// closest to name (by edit distance, at most a third of its length), for
// "did you mean".
func (idx *Index) nearNames(name string) []string {
	limit := max(1, len(name)/3)
	type cand struct {
		name string
		d    int
	}
	var found []cand
	consider := func(n string) {
		if abs(len(n)-len(name)) > limit {
			return
		}
		if d := editDistance(name, n, limit); d <= limit {
			found = append(found, cand{n, d})
		}
	}
	for n := range idx.byName {
		consider(n)
	}
	for n := range idx.providers {
		if _, real := idx.byName[n]; !real {
			consider(n)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].d != found[j].d {
			return found[i].d < found[j].d
		}
		return found[i].name < found[j].name
	})
	var out []string
	for i := 0; i < len(found) && i < 3; i++ {
		out = append(out, found[i].name)
	}
	return out
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance of a and b, or limit+1 once it is sure to exceed limit.
func editDistance(a, b string, limit int) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
