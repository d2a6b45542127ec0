package imageref

import v1 "github.com/google/go-containerregistry/pkg/v1"

// PlatformName names p the way specs, locks and reports name platforms:
// os/arch[/variant], as v1.Platform.String writes it, less the os.version
// (":10.0.17763" on a Windows index entry), the OS features and the
// features, which no spec names and no lock key holds. A platform with no
// OS has no name (""), as with v1.Platform.String.
func PlatformName(p v1.Platform) string {
	return v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}.String()
}

// ConfigPlatform is the platform an image's config names.
func ConfigPlatform(cf *v1.ConfigFile) v1.Platform {
	return v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion}
}
