//! The text `latchkey default-config` prints: every setting with its default and what it
//! means (docs/reference/configuration.md is generated from it). Kept apart from the settings'
//! types in config.rs; a test there parses it, so it cannot drift from them.

pub const EXAMPLE: &str = r#"# latchkey.toml — every setting, with its default. Environment variables override this
# file: LATCHKEY_<KEY>, nested keys joined by "__" (LATCHKEY_RATE_LIMITS__ENABLED=false).
# The key-encryption key for signing keys comes only from the environment: LATCHKEY_KEK
# (base64 of 32 random bytes; without it a 0600 file "kek" in data_dir is generated).

listen = "127.0.0.1:4000"
# public_url = "https://auth.example.com"   # default: http://<listen>
database_url = "sqlite://./data/latchkey.db" # or postgres://user:pass@host/db
data_dir = "./data"
# dev_mode = true                            # default: true when public_url is http:// on loopback;
                                             # never with an https:// public_url
app_name = "latchkey"
allowed_origins = []                         # e.g. ["https://app.example.com"]
trusted_proxies = []                         # e.g. ["10.0.0.2"]
forwarded_hops = 1                           # proxies that append to X-Forwarded-For (a CDN before
                                             # the load balancer: 2); the client is that far from the right
enumeration_protection = true
delete_self_enabled = true                   # people may delete their own accounts (DELETE /v1/me)
session_lifetime_days = 7
session_inactivity_minutes = 0               # 0: no idle limit
request_timeout_secs = 30
shutdown_delay_secs = 0                      # on SIGTERM: /readyz 503 this long before stopping
shutdown_timeout_secs = 30                   # then: how long requests in flight may finish
body_limit_bytes = 65536
# hash_concurrency = 2                       # default: one per CPU core
postgres_max_connections = 16
log_format = "text"                          # or "json"
# metrics_token = "..."                      # /metrics with Authorization: Bearer <token> (32+ chars)
# metrics_listen = "127.0.0.1:9464"          # or /metrics alone on an internal address
                                             # (neither: /metrics only in development mode)

[rate_limits]                                # docs/SECURITY.md, "Limits and lockout"
enabled = true                               # false turns every limit off (benchmarks only)
per_ip_per_minute = 30                       # per action; IPv6 counted per /64
per_identifier_per_minute = 10
codes_per_address_per_hour = 10              # one-time codes mailed to one address
code_failures_per_address_per_day = 20       # wrong codes per address (and account), across codes
mail_per_user_per_hour = 20                  # mail a signed-in user's requests send
mail_per_ip_per_hour = 100                   # mail requests from one IP (/64) send

# extra_ca_file = "/etc/latchkey/ca.pem"     # a private CA, trusted beside the system's roots
                                             # (JWKS, proxy upstreams, SMTP, webhooks, providers)
# geoip_database = "/var/lib/GeoIP/GeoLite2-City.mmdb"  # sessions' activity names city and country

# [smtp]                                     # without it, dev mode keeps mail at /dev/mail
# host = "smtp.example.com"
# tls = "starttls"                           # or "implicit" (465) or "none" (plain: a local relay);
                                             # default starttls, none for a loopback host
# port = 587                                 # default from tls: 587, 465 or 25
# username = "latchkey"
# password = "..."
# from = "latchkey <no-reply@example.com>"

[organizations]
enabled = true
max_allowed_memberships = 0                  # per new organization; 0: no limit
admin_delete_enabled = true
create_limit_per_user = 0                    # 0: no limit (a user's own limit wins)
creator_role = "org:admin"
default_role = "org:member"                  # of invitations and added members
invitation_expiry_days = 30
permissions = []                             # the app's own, e.g. ["org:invoices:create"]; org:admin holds them all
v1_token_claims = false                      # true: also Clerk's v1 org claims, for @clerk/nextjs 5 and clerk-sdk-node 5

# [[organizations.roles]]                    # custom roles, beside org:admin and org:member
# key = "billing"                            # becomes org:billing
# name = "Billing"
# description = "Sends invoices"
# permissions = ["org:invoices:create", "org:invoices:read"]

[sync]                                       # offline-first sync: /v1/sync/push, /pull, /events
enabled = true
include_babylog = true                       # BabyLog's tables: babies, feeds, sleeps, diapers, notes
schema_version = 1                           # what clients write now
min_schema_version = 1                       # the oldest still accepted
max_ops_per_push = 1000
max_push_bytes = 1048576
pushes_per_minute = 600                      # per user; 429 beyond (0: no limit)
max_space_bytes = 268435456                  # per space; puts to a full space are rejected (0: no quota)
default_pull_limit = 1000
max_pull_limit = 10000
max_clock_ahead_secs = 60                    # clock stamps further ahead are pulled back
client_ttl_days = 90                         # idle clients are forgotten
tombstone_ttl_days = 90                      # older deletes are compacted; older cursors reset

# [[sync.migrations]]                       # ops of older schema versions, brought forward
# version = 2                                # what this step brings an op of version 1 to
# table = "feeds"
# rename = { amount = "amount_ml" }          # old field name = new field name
# remove = ["legacy_flag"]                   # fields version 2 no longer has

# [sync.tables.invoices]                     # your own tables, beside BabyLog's
# read_permission = "org:invoices:read"      # needed in an organization's space (none: every member)
# write_permission = "org:invoices:create"
# max_bytes = 65536                          # of the fields one operation writes
# [sync.tables.invoices.fields]
# customer = { type = "string", required = true, max_length = 200 }
# amount = { type = "number", min = 0 }
# paid = { type = "boolean" }
# due = { type = "timestamp" }               # milliseconds since 1970
# lines = { type = "json", max_length = 16384 }
# kind = { type = "string", values = ["one-off", "monthly"] }
# parent = { type = "reference", table = "invoices" }

[webhooks]                                   # endpoints: latchkey webhooks create, or POST /v1/webhooks/endpoints
enabled = true                               # run the delivery worker in this instance
# allow_loopback = false                     # 127.0.0.1 and ::1 (default: on in development mode only)
allow_private_networks = false               # 10/8, 172.16/12, 192.168/16, 169.254/16, fc00::/7, ...
# require_https = true                       # default: on outside development mode
timeout_secs = 15                            # per attempt
rotation_overlap_hours = 24                  # the previous secret keeps signing this long
retention_days = 30                          # delivered messages are kept this long (for replays)
concurrency = 16                             # attempts in flight in this instance

[second_factors]                             # authenticator apps and backup codes (docs/second-factors.md)
policy = "optional"                          # "off", "optional" or "required" (then a user without one adds one at sign-in)

[email_links]                                # sign-in and sign-up links mailed to the address (docs/email-links.md)
sign_in = true                               # "Email link" among a sign-in's ways in
sign_up = false                              # sign-ups prove their address with a link instead of a code
require_same_client = false                  # refuse a link opened in another browser than the one that asked

[passkeys]                                   # sign-in with Face ID, a fingerprint or a security key (docs/passkeys.md)
enabled = false
# rp_id = "example.com"                      # default: the public URL's host (must be a domain name)
allow_autofill = true                        # offer passkeys in the browser's autofill
show_sign_in_button = true                   # a "Use passkey" button on the sign-in
satisfies_second_factor = true               # a passkey sign-in needs no second factor (fva [0, 0])
timeout_seconds = 300                        # how long a challenge stays open

# [oauth.google]                             # "Continue with Google" (redirect URI: <public_url>/v1/oauth_callback)
# client_id = "..."
# client_secret = "..."                      # or LATCHKEY_OAUTH__GOOGLE__CLIENT_SECRET
# [oauth.acme]                               # any OpenID Connect provider: strategy oauth_custom_acme
# issuer = "https://login.acme.example"
# client_id = "..."
# client_secret = "..."
# name = "Acme"                              # the button's label
# scopes = ["openid", "email", "profile"]
# sign_up = true                             # whether new people may create an account with it
"#;
