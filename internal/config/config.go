// Package config is Portcullis' configuration: one YAML file decoded
// strictly (unknown keys are errors), documented defaults, and a Validate
// step whose errors name the file, line and field. Flags from the command
// line are applied on top by the caller before Validate.
package config

import (
	"time"
)

// Config is the whole configuration. The zero value plus Defaults is a valid
// single-site shield once at least one origin is set.
type Config struct {
	// Listeners accept client traffic.
	Listeners []Listener `yaml:"listeners" doc:"client-facing listeners (HTTP, HTTPS from files or ACME)" default:"[{address: \":8080\"}]"`
	// Admin is the admin listener (health, metrics, API).
	Admin Admin `yaml:"admin" doc:"admin listener: /healthz, /metrics, /api/v1"`
	// DataDir holds the incident store and state.
	DataDir string `yaml:"data_dir" doc:"directory for the incident store and state" default:"./portcullis-data"`
	// ClientIP says how the real client address is found.
	ClientIP ClientIP `yaml:"client_ip" doc:"client identity: trusted proxies, forwarding headers, aggregate prefixes"`
	// Limits hardens the listeners.
	Limits Limits `yaml:"limits" doc:"connection and request limits applied at the listener"`
	// Rules apply to every site before the site's own rules.
	Rules Rules `yaml:"rules" doc:"allow/deny lists and rate limits applied to every site"`
	// Sites are the protected platforms, matched by Host.
	Sites []Site `yaml:"sites" doc:"protected sites: host names mapped to origin pools"`
	// Geo points at optional IP→country/ASN data.
	Geo Geo `yaml:"geo" doc:"optional open geo data (mmdb country, DB-IP ASN CSV)"`
	// Log configures structured logging.
	Log Log `yaml:"log" doc:"structured JSON logging with sampling"`
	// Detect tunes attack detection.
	Detect Detect `yaml:"detect" doc:"attack detection tuning"`
	// Mitigation sets how the shield reacts to detected attacks.
	Mitigation Mitigation `yaml:"mitigation" doc:"automatic mitigation (escalation ladder)"`
	// Challenge configures the browser check and member standing.
	Challenge Challenge `yaml:"challenge" doc:"browser challenge, verified crawlers and member standing"`
	// Alerts tells the staff about incidents.
	Alerts Alerts `yaml:"alerts" doc:"incident alerts: webhooks (generic JSON, Slack) and e-mail"`
}

// Challenge configures the challenge stage and member standing.
type Challenge struct {
	VerifiedCrawlers []Prefix `yaml:"verified_crawlers" doc:"published crawler ranges (e.g. Googlebot's) that are never challenged"`
	MemberHeader     string   `yaml:"member_header" doc:"origin response header that marks a member login (its value is the member id); removed before the client" default:"X-Portcullis-Member"`
	JWTCookie        string   `yaml:"jwt_cookie" doc:"cookie holding the origin's session JWT (HS256), accepted as member standing"`
	JWTKeyFile       string   `yaml:"jwt_key_file" doc:"file holding the HS256 key (≥32 bytes) of jwt_cookie"`
	Difficulty       int      `yaml:"difficulty" doc:"proof-of-work bits in peace time; raised automatically during an attack (8..24)" default:"14"`
}

// Alerts configures incident alerts (opened, escalation, closed).
type Alerts struct {
	Webhooks           []AlertWebhook `yaml:"webhooks" doc:"HTTP endpoints that receive a JSON POST per alert"`
	SMTP               *AlertSMTP     `yaml:"smtp" doc:"send alerts by e-mail"`
	EscalationInterval Duration       `yaml:"escalation_interval" doc:"at most one escalation alert per incident per interval" default:"1m0s"`
	EscalationsPerHour int            `yaml:"escalations_per_hour" doc:"cap on escalation alerts per hour across incidents" default:"20"`
	Pseudonymise       bool           `yaml:"pseudonymise" doc:"replace attacking prefixes by keyed pseudonyms (as reports --pseudonymise)" default:"false"`
	MinPrefixShare     float64        `yaml:"min_prefix_share" doc:"an attacking prefix is named only above this share of the incident's traffic" default:"0.01"`
}

// AlertWebhook is one webhook receiver.
type AlertWebhook struct {
	Name string `yaml:"name" doc:"receiver name (logs, metrics)"`
	URL  string `yaml:"url" doc:"endpoint URL (never logged)"`
	Kind string `yaml:"kind" doc:"generic | slack" default:"generic"`
}

// AlertSMTP is the e-mail channel.
type AlertSMTP struct {
	Host         string   `yaml:"host" doc:"SMTP server"`
	Port         int      `yaml:"port" doc:"SMTP port" default:"587"`
	Username     string   `yaml:"username" doc:"SMTP user (optional)"`
	PasswordFile string   `yaml:"password_file" doc:"file holding the SMTP password"`
	From         string   `yaml:"from" doc:"sender address"`
	To           []string `yaml:"to" doc:"recipients"`
	StartTLS     bool     `yaml:"starttls" doc:"require STARTTLS" default:"false"`
}

// Mitigation configures the automatic escalation ladder.
type Mitigation struct {
	// Mode is enforce (decisions are applied), shadow (decided, logged and
	// counted, not enforced) or observe (no automatic decisions; operator
	// decisions still apply).
	Mode string `yaml:"mode" doc:"enforce | shadow | observe" default:"enforce"`
}

// Listener is one client-facing socket.
type Listener struct {
	Address       string `yaml:"address" doc:"host:port to listen on" default:":8080"`
	ProxyProtocol bool   `yaml:"proxy_protocol" doc:"accept PROXY protocol v1/v2 headers from trusted proxies" default:"false"`
	TLS           *TLS   `yaml:"tls" doc:"serve HTTPS (certificate files or ACME)"`
	H2C           *bool  `yaml:"h2c" doc:"accept unencrypted HTTP/2 with prior knowledge on a plain listener" default:"true"`
}

// TLS configures HTTPS on a listener: either CertFile+KeyFile, or ACME.
type TLS struct {
	CertFile string `yaml:"cert_file" doc:"PEM certificate chain"`
	KeyFile  string `yaml:"key_file" doc:"PEM private key"`
	ACME     *ACME  `yaml:"acme" doc:"obtain certificates with ACME (certmagic)"`
}

// ACME configures automatic certificates.
type ACME struct {
	Email   string   `yaml:"email" doc:"account e-mail"`
	Domains []string `yaml:"domains" doc:"names to obtain certificates for"`
	CA      string   `yaml:"ca" doc:"ACME directory URL" default:"Let's Encrypt production"`
	Agreed  bool     `yaml:"agreed" doc:"agree to the CA's terms of service" default:"false"`
}

// Admin is the admin listener.
type Admin struct {
	Address   string `yaml:"address" doc:"host:port of the admin listener" default:"127.0.0.1:9090"`
	Token     string `yaml:"token" doc:"bearer token for /metrics and /api (never logged); empty = unauthenticated, loopback only"`
	TokenFile string `yaml:"token_file" doc:"file holding the bearer token (preferred over token)"`
}

// ClientIP configures client identity.
type ClientIP struct {
	TrustedProxies []Prefix `yaml:"trusted_proxies" doc:"peers whose forwarding headers and PROXY headers are believed" default:"[]"`
	Headers        []string `yaml:"headers" doc:"forwarding headers honoured from trusted proxies, in order" default:"[X-Forwarded-For]"`
	IPv4Prefix     int      `yaml:"ipv4_prefix" doc:"aggregate prefix length for IPv4 keys" default:"24"`
	IPv6Prefix     int      `yaml:"ipv6_prefix" doc:"aggregate prefix length for IPv6 keys (48..128)" default:"64"`
}

// Limits hardens listeners and requests.
type Limits struct {
	ReadHeaderTimeout           Duration `yaml:"read_header_timeout" doc:"time to receive the request headers (slowloris)" default:"10s"`
	BodyIdleTimeout             Duration `yaml:"body_idle_timeout" doc:"longest pause between request body reads (slow POST)" default:"10s"`
	MinBodyRate                 ByteSize `yaml:"min_body_rate" doc:"minimum request body rate in bytes/s (slow POST): on the average since the body began, after body_grace, and over every sliding 10 s once the body has been arriving for 10 s, so a fast start buys no credit" default:"1KiB"`
	BodyGrace                   Duration `yaml:"body_grace" doc:"time before min_body_rate is enforced" default:"5s"`
	WriteIdleTimeout            Duration `yaml:"write_idle_timeout" doc:"longest a single response write may block (slow read); streams are not cut while data flows" default:"30s"`
	IdleTimeout                 Duration `yaml:"idle_timeout" doc:"keep-alive idle timeout" default:"1m0s"`
	MaxHeaderBytes              ByteSize `yaml:"max_header_bytes" doc:"maximum request header size" default:"32KiB"`
	MaxBodyBytes                ByteSize `yaml:"max_body_bytes" doc:"default maximum request body size (per route override)" default:"10MiB"`
	RequestBufferBytes          ByteSize `yaml:"request_buffer_bytes" doc:"request bodies up to this size are read whole into memory at the edge before they take an origin slot (slow POST); larger ones are spooled to a temporary file under data_dir (up to the route's max_body_bytes); routes opt out with buffer_request: false" default:"1MiB"`
	RequestBufferTotalBytes     ByteSize `yaml:"request_buffer_total_bytes" doc:"memory all buffered request bodies may use together (spooled bodies may use 16× this on disk); when full, a new body goes to the disk spool instead, and only when both are full does it wait briefly, then get 503 with Retry-After" default:"64MiB"`
	RequestBufferPerClientBytes ByteSize `yaml:"request_buffer_per_client_bytes" doc:"memory the buffered request bodies of one client address may hold together (request_buffer_bytes ≤ this ≤ request_buffer_total_bytes; unset = request_buffer_total_bytes/8, at least request_buffer_bytes); its aggregate prefix (client_ip's /24 or /64) may hold twice this, and the disk spool has the same shares in proportion; beyond a share the client's new bodies wait briefly, then get 429 with Retry-After, while other networks are unaffected; a client's only body is never refused by a share" default:"8MiB"`
	MaxConns                    int      `yaml:"max_conns" doc:"maximum open client connections per listener" default:"20000"`
	MaxConnsPerClient           int      `yaml:"max_conns_per_client" doc:"maximum open connections per peer address (trusted proxies exempt)" default:"256"`
	MaxInflightPerClient        int      `yaml:"max_inflight_per_client" doc:"maximum concurrent requests (incl. WebSockets) per resolved client address" default:"64"`
	H2MaxConcurrentStreams      int      `yaml:"h2_max_concurrent_streams" doc:"HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS" default:"100"`
	H2ResetBudget               int      `yaml:"h2_reset_budget" doc:"client-cancelled HTTP/2 streams allowed per connection per 10s before the connection is closed (rapid reset)" default:"200"`
}

// Rules are static filters.
type Rules struct {
	Allow      []Prefix    `yaml:"allow" doc:"addresses/CIDRs that bypass all filters"`
	Deny       []Prefix    `yaml:"deny" doc:"addresses/CIDRs refused with 403"`
	DenyLists  []string    `yaml:"deny_lists" doc:"list files (FireHOL netset, Spamhaus DROP text or JSON), reloaded on change"`
	RateLimits []RateLimit `yaml:"rate_limits" doc:"per-key request rate limits"`
}

// RateLimit is one per-key limit (GCRA).
type RateLimit struct {
	Name   string   `yaml:"name" doc:"rule id shown in responses and logs"`
	Key    string   `yaml:"key" doc:"address | prefix" default:"address"`
	Rate   RateSpec `yaml:"rate" doc:"COUNT/PERIOD, e.g. 100/10s"`
	Burst  int      `yaml:"burst" doc:"requests a key may make at once; 0 = the default, max(COUNT, per-second equivalent): a whole period's allowance, never less than one second's worth" default:"0"`
	Paths  []string `yaml:"paths" doc:"path prefixes this limit applies to; empty = all"`
	Shadow bool     `yaml:"shadow" doc:"decide and log, but do not enforce" default:"false"`
}

// Site is one protected platform.
type Site struct {
	Name                 string      `yaml:"name" doc:"site id (used in metrics, incidents and the API); the first unnamed site is \"default\", later ones site1, site2…"`
	Hosts                []string    `yaml:"hosts" doc:"Host names served by this site; \"*\" matches any" default:"[\"*\"]"`
	Origins              []string    `yaml:"origins" doc:"origin base URLs (http:// or https://), load-balanced"`
	HealthCheck          HealthCheck `yaml:"health_check" doc:"active origin health checks"`
	MaxOriginConcurrency int         `yaml:"max_origin_concurrency" doc:"maximum concurrent requests to each origin (the ceiling of the adaptive limit)" default:"512"`
	MinOriginConcurrency int         `yaml:"min_origin_concurrency" doc:"floor of the adaptive per-origin concurrency limit, which follows origin latency and 429/503/504 answers (Gradient2 + AIMD); equal to max_origin_concurrency fixes the limit" default:"4"`
	ReservedShare        float64     `yaml:"reserved_share" doc:"share (0-0.9) of each origin's concurrency limit only critical requests (critical routes, members) may use; 0 means the default" default:"0.2"`
	QueueTimeout         Duration    `yaml:"queue_timeout" doc:"how long a request may wait for an origin slot (queued by priority) before 503" default:"100ms"`
	Priorities           []Priority  `yaml:"priorities" doc:"route priorities for origin capacity: when the origins are saturated, low is shed first and only critical may use reserved_share"`
	Cache                Cache       `yaml:"cache" doc:"micro-cache for anonymous GETs, with request coalescing and serve-stale"`
	OriginTimeout        Duration    `yaml:"origin_timeout" doc:"time to receive the origin's response headers" default:"30s"`
	DialTimeout          Duration    `yaml:"dial_timeout" doc:"origin connect timeout" default:"3s"`
	MaxIdleConns         int         `yaml:"max_idle_conns" doc:"keep-alive connections kept per origin" default:"512"`
	Routes               []Route     `yaml:"routes" doc:"per-path overrides"`
	Rules                Rules       `yaml:"rules" doc:"site rules, after the global ones"`
	AuthRoutes           []string    `yaml:"auth_routes" doc:"login/sign-up paths watched for credential stuffing" default:"[/login]"`
	ExpensiveRoutes      []string    `yaml:"expensive_routes" doc:"path prefixes that are costly for the origin" default:"[/search]"`
	// SensitiveRoutes are the routes whose responses are evidence of data
	// access (a members' export, a donor list): every incident records
	// their successful responses and bytes against a peace-time baseline.
	SensitiveRoutes []string `yaml:"sensitive_routes" doc:"paths whose successful responses and bytes every incident records against their peace-time baseline (integrity evidence: \"was data downloaded?\"): a path and everything below it (\"/members/export\"), or a prefix ending in * (\"/api/donors*\"); at most 16" default:"[]"`
}

// Priority ranks a route for origin capacity.
type Priority struct {
	Path     string `yaml:"path" doc:"path prefix (the longest match wins)"`
	Priority string `yaml:"priority" doc:"critical, normal or low" default:"normal"`
}

// Cache configures a site's micro-cache. Only anonymous GETs (no
// Authorization, no cookie outside anonymous_cookies, no upgrade) are
// cached; responses with Set-Cookie, Cache-Control no-store/private/
// no-cache, a Vary other than Accept-Encoding, trailers, a stream content
// type or a status other than 200/301/404 never are.
type Cache struct {
	Enabled          *bool    `yaml:"enabled" doc:"cache anonymous GET responses and serve them stale when the origin is overloaded, erroring or down" default:"true"`
	DefaultTTL       Duration `yaml:"default_ttl" doc:"micro-cache: freshness given to cacheable responses the origin does not mark (no max-age, s-maxage or Expires), e.g. 1s; 0s = off, only marked responses are cached" default:"0s"`
	StaleFor         Duration `yaml:"stale_for" doc:"how long past expiry an entry is kept and served stale (origin queue timeout, 5xx, transport error, all origins ejected); never for must-revalidate" default:"10m0s"`
	MaxEntries       int      `yaml:"max_entries" doc:"maximum cached responses per site (least recently used go first)" default:"10000"`
	MaxBytes         ByteSize `yaml:"max_bytes" doc:"maximum bytes cached per site" default:"64MiB"`
	MaxObjectBytes   ByteSize `yaml:"max_object_bytes" doc:"largest response body cached; larger responses stream through" default:"1MiB"`
	IgnoreQueryOn    []string `yaml:"ignore_query_on" doc:"paths whose query string is dropped from the cache key and the origin fetch, except keep_query (cache-busting defence): exact paths (\"/\"), or prefixes ending in * (\"/news/*\")"`
	KeepQuery        []string `yaml:"keep_query" doc:"query parameters kept on ignore_query_on paths"`
	AnonymousCookies []string `yaml:"anonymous_cookies" doc:"cookie names (exact, or prefixes ending in *) that do not make a request personal; any other cookie or an Authorization header bypasses the cache" default:"[portcullis_*]"`
}

// Route overrides limits for a path prefix; the longest matching path
// wins, and a setting it leaves unset takes the global value.
type Route struct {
	Path         string   `yaml:"path" doc:"path prefix"`
	MaxBodyBytes ByteSize `yaml:"max_body_bytes" doc:"maximum request body for this route (default limits.max_body_bytes)"`
	// BufferRequest false streams request bodies to the origin as they
	// arrive (large uploads), which lets a slow body hold an origin slot.
	BufferRequest *bool `yaml:"buffer_request" doc:"read request bodies whole at the edge before forwarding them (limits.request_buffer_bytes); false streams them as they arrive (e.g. large file uploads), so a slow body then holds an origin slot until the body timeouts cut it" default:"true"`
}

// HealthCheckOff as sites[].health_check.path disables active origin
// health checks.
const HealthCheckOff = "off"

// HealthCheck configures active origin checks.
type HealthCheck struct {
	Path           string   `yaml:"path" doc:"path requested on each origin; \"off\" disables active checks (passive ejection on proxied failures stays)" default:"/healthz"`
	Interval       Duration `yaml:"interval" doc:"time between checks" default:"5s"`
	Timeout        Duration `yaml:"timeout" doc:"check timeout" default:"2s"`
	UnhealthyAfter int      `yaml:"unhealthy_after" doc:"consecutive failures before an origin is ejected" default:"3"`
	HealthyAfter   int      `yaml:"healthy_after" doc:"consecutive successes before it is readmitted" default:"2"`
}

// Geo configures optional attribution data.
type Geo struct {
	CountryMMDB string   `yaml:"country_mmdb" doc:"MaxMind-format country database (GeoLite2-Country or ip-location-db)"`
	ASNMMDB     string   `yaml:"asn_mmdb" doc:"MaxMind-format ASN database (GeoLite2-ASN)"`
	ASNCSV      []string `yaml:"asn_csv" doc:"DB-IP/ip-location-db ASN CSV files (plain or .gz)"`
}

// Log configures logging.
type Log struct {
	Level           string `yaml:"level" doc:"debug | info | warn | error" default:"info"`
	ShieldPerSecond int    `yaml:"shield_per_second" doc:"shield responses logged per second before sampling kicks in" default:"50"`
	SampleEvery     int    `yaml:"sample_every" doc:"beyond the per-second budget, log one shield response in N" default:"1000"`
	RetentionDays   int    `yaml:"retention_days" doc:"days closed incidents are kept in the store (pruned at start and hourly)" default:"30"`
}

// Detect tunes detection.
type Detect struct {
	Tick Duration `yaml:"tick" doc:"accounting/detection tick" default:"250ms"`
	// MinAttackRPS is the absolute floor below which no HTTP flood is declared.
	MinAttackRPS float64 `yaml:"min_attack_rps" doc:"absolute floor below which no HTTP flood is declared" default:"50"`
	// StaticRPS, when > 0, declares a flood above this rate regardless of baseline.
	StaticRPS float64 `yaml:"static_rps" doc:"declare a flood above this request rate regardless of baseline (0 = off)" default:"0"`
}

// durationDefault is a helper for defaults.
func durationDefault(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}
