package spec

// Struct tags: `yaml` is the key, `doc` a one-line description, `default`
// the documented default (prose), `required:"true"` a field that must be
// given, `enum` the comma-separated values a field takes, `example` a
// value that the reference and the missing-field message show, and
// `requires` the fields that must be given with this one. The schema
// and the field reference (schema.go) are generated from them.

// Spec is a parsed, validated repro.yaml.
type Spec struct {
	Version     int               `yaml:"version" doc:"Spec format version. Must be 1." required:"true" enum:"1" example:"1"`
	Name        string            `yaml:"name" doc:"Image name: the default output tag, history entries and SBOM name. Lower-case letters and digits, separated by . _ __ or dashes." required:"true" example:"my-app"`
	Base        string            `yaml:"base" doc:"The base image: a registry reference pinned by digest (host/repo:tag@sha256:…), or by tag with the pin in the lock file (repro lock); oci:DIR@sha256:…; oci-archive:FILE[:TAG]; or scratch, the empty base. Its layers are copied as published and its config merged under the spec's." default:"scratch"`
	Context     string            `yaml:"context" doc:"The build context: the directory that source:, go: and apt.keyring are relative to, and that repro verify copies. The spec's directory, or one of its parents written as .. segments (..: its parent, ../..: the one above), so that the spec stays inside its context: a spec under specs/ can build a Go module at the repository's root. The lock stays beside the spec, and oci: bases are relative to the spec's directory." default:"." example:"../.."`
	Platforms   []Platform        `yaml:"platforms" doc:"Platforms to build, as os/arch[/variant] the way Go and OCI name them; an unknown one is an error. One platform gives an image manifest; several give an image index." default:"[linux/amd64]"`
	Epoch       *Epoch            `yaml:"epoch" doc:"The build's epoch, in seconds since 1970, or the word git for the committer time of the context's HEAD: config created, the history, and the bound of every timestamp. In format 1 it is every file's mtime; in format 2 each layer has its own epoch, at most this one (a package layer's: its newest .deb file; with git, a context layer's: the newest commit that touched its sources or its lines of the spec)." default:"$SOURCE_DATE_EPOCH, else 0"`
	Format      int               `yaml:"format" doc:"The output format (the tar rule and the compression settings, repro-layer/N): 2 (every gzip header byte fixed, MTIME zero; each layer's mtimes from its own inputs) or 1 (what repro wrote first: every mtime the build's epoch). Every format a release wrote stays writable byte for byte; --format on build and verify says the same. Recorded in the lock." enum:"2,1" default:"the lock's format, else 2 (the newest)"`
	Vars        map[string]string `yaml:"vars" doc:"Template variables (.Vars.key), overridable with --var key=value."`
	Layers      []Layer           `yaml:"layers" doc:"The layers to add, in order; each entry is exactly one layer."`
	Config      Config            `yaml:"config" doc:"The OCI image config. Absent fields stay absent."`
	Annotations map[string]string `yaml:"annotations" doc:"Manifest (and index) annotations. Values are templates."`
	Tags        []string          `yaml:"tags" doc:"Registry references that --push sends the image to. Templates."`
	Secrets     *Secrets          `yaml:"secrets" doc:"The secret guard: it refuses private keys, tokens and credentials in what the build adds, unless an allow entry lets them pass."`
	Apt         *Apt              `yaml:"apt" doc:"Where the Debian packages of layers with packages come from, and the keys that must sign them. Required when a layer has packages."`
	Accounts    *Accounts         `yaml:"accounts" doc:"Users and groups: /etc/passwd, /etc/group and /etc/shadow merged over the base's, written as one final layer."`
	Systemd     *Systemd          `yaml:"systemd" doc:"systemd units to enable: the [Install] links that systemctl enable makes, written as one final layer."`

	// File is the spec's path as given to Load; messages use it.
	File string `yaml:"-"`
	// Dir is the build context, absolute: the directory holding the spec,
	// or the parent that context: names.
	Dir string `yaml:"-"`
	// SpecDir is the directory holding the spec, absolute; it is Dir
	// unless context: names a parent.
	SpecDir string `yaml:"-"`

	pos  positions // where each field's value is
	keys positions // where each mapping entry's key is
}

// Layer is one image layer.
type Layer struct {
	Name     string    `yaml:"name" doc:"Recorded in the layer's history entry (created_by)." default:"layer-N (N counting from 1)"`
	Contents []Content `yaml:"contents" doc:"What the layer holds. Entries are sorted by path in the layer, so their order here does not matter. A layer has contents or packages, not both."`
	Packages []string  `yaml:"packages" doc:"Debian packages to install, by name (nginx-light), optionally with a version (nginx-light=1.22.1-9) or a constraint (nginx-light (>= 1.22)), with their Depends and Pre-Depends closure less what the base and earlier layers hold. Pinned by the lock file (repro lock); maintainer scripts are never run. Requires apt." example:"[nginx-light, ca-certificates]"`
}

// Content is one entry of a layer.
type Content struct {
	Path         string   `yaml:"path" doc:"Destination in the image: an absolute path, cleaned." required:"true" example:"/etc/motd"`
	Type         string   `yaml:"type" doc:"What the entry is: a regular file, an empty directory, a symbolic link, a hard link, or a whiteout that removes the path. Inferred as file when source, content, url or go is given; required otherwise." enum:"file,dir,symlink,hardlink,remove"`
	Source       string   `yaml:"source" doc:"A file or directory of the build context, relative to it (the spec's directory unless context: says otherwise); may not leave it. A directory is copied recursively, symlinks inside it kept as symlinks. Template ({{.Os}} {{.Arch}} {{.Variant}} and the rest)."`
	Exclude      []string `yaml:"exclude" doc:"With a directory source: globs relative to it; ** matches any number of directories, a trailing / matches directories only."`
	Content      *string  `yaml:"content" doc:"Inline file content, written as is (never templated)."`
	Go           string   `yaml:"go" doc:"A main package of a Go module inside the build context, relative to it (the spec's directory unless context: says otherwise; ./cmd/server); may not leave it. Compiled once per platform with the toolchain the lock pins (GOOS and GOARCH of the platform, GOARM or GOAMD64 from its variant, CGO_ENABLED=0, -trimpath, -mod=readonly, -buildvcs=false, an empty build ID, no GOFLAGS), so that no host state reaches the binary. The module's go.mod and go.sum must be inside the context and complete, and its go line may not ask for a newer Go than the pin: repro lock refuses to pin such a toolchain, and a build refuses it (exit 2, naming go.mod's line)." example:"./cmd/server"`
	LDFlags      []string `yaml:"ldflags" doc:"With go: linker flags, one flag (and its value) per item, like -s or -X main.version={{.Version}}; joined with spaces into go build's -ldflags after -buildid= (quote a value that holds spaces, as go build wants). Templates ({{.Os}} {{.Arch}} {{.Variant}} and the rest)." example:"[-s, -w, \"-X main.version={{.Version}}\"]"`
	BuildTags    []string `yaml:"tags" doc:"With go: build tags (-tags)." example:"[netgo]"`
	URL          string   `yaml:"url" doc:"An http(s) URL to fetch the file from; cached by digest. Requires sha256." requires:"sha256"`
	SHA256       string   `yaml:"sha256" doc:"With url: the SHA-256 the fetched file must have, as 64 lower-case hex digits; a mismatch is an operational failure (exit 3)."`
	Target       string   `yaml:"target" doc:"For symlink: the link target, written as is. For hardlink: the absolute path of a regular file of the same layer."`
	Mode         *Mode    `yaml:"mode" doc:"Permission bits as a quoted octal string, like \"0644\"; at most \"07777\" (setuid, setgid and sticky included). On a directory source, the mode of its regular files." default:"files: 0755 if the source's owner-exec bit is set, else 0644; go: 0755; dirs 0755; symlinks 0777"`
	UID          *int     `yaml:"uid" doc:"Owner user id (on a directory source, of everything in it)." default:"0"`
	GID          *int     `yaml:"gid" doc:"Owner group id (on a directory source, of everything in it)." default:"0"`
	Capabilities []string `yaml:"capabilities" doc:"Linux file capabilities of a file, by name (cap_net_bind_service; the case and the cap_ prefix are optional), written as a security.capability xattr (v2, permitted and effective)."`
}

// Content types.
const (
	TypeFile     = "file"
	TypeDir      = "dir"
	TypeSymlink  = "symlink"
	TypeHardlink = "hardlink"
	TypeRemove   = "remove"
)

// Config is the part of the OCI image config that a spec sets.
type Config struct {
	Entrypoint   []string          `yaml:"entrypoint" doc:"The entrypoint, exec form."`
	Cmd          []string          `yaml:"cmd" doc:"Default arguments, exec form."`
	Env          map[string]string `yaml:"env" doc:"Environment; written sorted by key as KEY=value. Values are templates."`
	WorkingDir   string            `yaml:"workingDir" doc:"Working directory, an absolute path."`
	User         string            `yaml:"user" doc:"The user to run as: user[:group], by name or numeric id, like 65532:65532."`
	ExposedPorts []string          `yaml:"exposedPorts" doc:"Ports as port[/tcp|udp|sctp]; tcp when no protocol is given."`
	Volumes      []string          `yaml:"volumes" doc:"Volume mount points, absolute paths."`
	Labels       map[string]string `yaml:"labels" doc:"Config labels. Values are templates."`
	StopSignal   string            `yaml:"stopSignal" doc:"Signal to stop the container: a name such as SIGTERM, or a number."`
}

// Secrets configures the secret guard.
type Secrets struct {
	Allow []SecretAllow `yaml:"allow" doc:"The way past the guard. Every use of an entry is reported."`
}

// SecretAllow lets one finding (or a set) pass the secret guard.
type SecretAllow struct {
	Path   string `yaml:"path" doc:"An absolute image path, or a glob with ** for any number of directories." required:"true" example:"/usr/local/go/src/**"`
	SHA256 string `yaml:"sha256" doc:"Only the file with this content (lower-case hex SHA-256)."`
	Rule   string `yaml:"rule" doc:"Only findings of this rule (private-key, github-token, env-secret, ...; see pkg/secrets)." example:"private-key"`
	Reason string `yaml:"reason" doc:"Why this secret may ship. Required; it is printed with every use." required:"true"`
}

// Apt says where Debian packages come from.
type Apt struct {
	Sources  []AptSource       `yaml:"sources" doc:"Debian-style repositories (dists/ and pool/). A package found in several takes the highest version." required:"true"`
	Keyring  string            `yaml:"keyring" doc:"A file of the build context, relative to it (the spec's directory unless context: says otherwise), holding the ASCII-armored (or binary) OpenPGP public keys that must sign every InRelease. Debian's are in the debian-archive-keyring package (/usr/share/keyrings/debian-archive-keyring.gpg)." required:"true" example:"keys/debian-archive-keyring.gpg"`
	Prefer   map[string]string `yaml:"prefer" doc:"For a virtual package with several providers, the one to take (virtual: provider), over the one apt would take. Without an entry, repro takes apt's choice (an Essential or more important provider first, then apt's own order), prints it and records it in the lock."`
	Exclude  []string          `yaml:"exclude" doc:"Packages never to install, though something depends on them: the closure leaves them out, warns, names what depended on them, and the lock and the SBOM record it. For a dependency the image does without (ca-certificates' openssl and debconf)." example:"[debconf]"`
	Timezone string            `yaml:"timezone" doc:"The time zone for /etc/localtime and /etc/timezone, which tzdata's postinst would ask for: a zone of /usr/share/zoneinfo (tzdata must be installed), like Etc/UTC or Europe/Berlin. Without it there is no /etc/localtime (programs then use UTC)." example:"Etc/UTC"`
	Snapshot *AptSnapshot      `yaml:"snapshot" doc:"A snapshot archive to fetch a pinned .deb from when its source no longer has it (Debian's mirrors delete superseded versions). The .deb is fetched by its pinned file name and checked against its pinned sha256."`
	UsrMerge *bool             `yaml:"usrmerge" doc:"Move what packages put in /bin, /sbin and /lib* into /usr and write the symlinks /bin -> usr/bin and so on, as Debian 12 does. A base whose /bin (or /sbin, /lib*) is a real directory cannot take them: set false there." default:"true"`
}

// AptSnapshot is a snapshot archive in snapshot.debian.org's layout:
// <url>/<archive>/<timestamp>/pool/..., where <archive> is the last path
// element of a source's url (debian, debian-security).
type AptSnapshot struct {
	URL       string `yaml:"url" doc:"The snapshot archive's base URL." required:"true" example:"http://snapshot.debian.org/archive"`
	Timestamp string `yaml:"timestamp" doc:"The snapshot to read, as snapshot.debian.org names them (YYYYMMDDTHHMMSSZ, UTC). Without it, repro lock records the time of locking." example:"20250520T000000Z"`
}

// AptSource is one Debian-style repository.
type AptSource struct {
	URL        string   `yaml:"url" doc:"The repository's http(s) URL: the directory holding dists/ and pool/." required:"true" example:"http://deb.debian.org/debian"`
	Suites     []string `yaml:"suites" doc:"Suites (dists/<suite>/InRelease) to read, like bookworm and bookworm-updates." required:"true" example:"[bookworm]"`
	Components []string `yaml:"components" doc:"Components of each suite to read." default:"[main]"`
}

// Systemd says which systemd units the image enables.
type Systemd struct {
	Enable []string `yaml:"enable" doc:"Units to enable, by name (nginx.service, getty@tty1.service, a template with DefaultInstance=): repro reads each unit file from the image (the base and every layer) and writes the symlinks of its [Install] section (WantedBy=, RequiredBy=, Alias=, Also=, DefaultInstance=) under /etc/systemd/system, as systemctl enable makes them." required:"true" example:"[nginx.service]"`
}

// Accounts are the users and groups the image gets.
type Accounts struct {
	Groups []Group `yaml:"groups" doc:"Groups for /etc/group, merged over the base's by name."`
	Users  []User  `yaml:"users" doc:"Users for /etc/passwd and /etc/shadow (with a locked password), merged over the base's by name."`
}

// Group is one /etc/group entry.
type Group struct {
	Name string `yaml:"name" doc:"The group name: a lower-case letter or _, then letters, digits, _ or -." required:"true" example:"www-data"`
	GID  *int   `yaml:"gid" doc:"The group id." required:"true" example:"33"`
}

// User is one /etc/passwd entry.
type User struct {
	Name  string `yaml:"name" doc:"The user name: a lower-case letter or _, then letters, digits, _ or -." required:"true" example:"www-data"`
	UID   *int   `yaml:"uid" doc:"The user id." required:"true" example:"33"`
	GID   *int   `yaml:"gid" doc:"The primary group id: a group of accounts.groups or of the base." required:"true" example:"33"`
	Home  string `yaml:"home" doc:"The home directory, an absolute path. Not created: add it to a layer when the user needs it." default:"/nonexistent"`
	Shell string `yaml:"shell" doc:"The login shell, an absolute path." default:"/usr/sbin/nologin"`
}
