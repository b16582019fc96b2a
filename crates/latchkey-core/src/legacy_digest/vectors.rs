//! Known-good digests, one or more per verifiable hasher (`awscognito` has none: it is refused).

/// (hasher, password, digest), from each ecosystem's own library or documentation
/// (docs/plans/clerk-password-digests.md names the source of each; sdk/python/legacy_digests.py
/// makes fresh ones with each ecosystem's Python library and signs in with them).
pub const VECTORS: &[(&str, &str, &str)] = &[
    ("bcrypt", "Kk4aPMeiaRpAs2OeX1NE", "$2b$10$U4C0ZY8OG8y41F9LusfKyu3HRMBL0rCZcKBVsXhgr.n8Ou6FPhzO2"),
    ("bcrypt", "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("bcrypt_sha256_django", "lètmein", "bcrypt_sha256$$2a$08$NDjSAIcas.EcoxCRiArvT.MkNiPYVhrsrnJsRkLueZOoV1bsQqlmC"),
    // pip bcrypt over password + pepper, as Devise's encryptor does.
    (
        "bcrypt_peppered",
        "devise-password",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.JJBRCXLYyEGcXpbJctcjL2CMCZLipoe$pepper-of-the-app",
    ),
    // A 128-hex pepper as Devise's generator makes: bcrypt reads the first 72 bytes only.
    (
        "bcrypt_peppered",
        "lètmein",
        "$2b$05$CCCCCCCCCCCCCCCCCCCCC.MUZ/dT6s7W7ZNttUIsYPOgd8G1.HK/C$3f986e2d71dd0747b309004afbf1dd6da5ca73bb20c470e94ec9a5896b8e4dfd05b7a253dfff72f69e52d40aaac47e3cd30e70384fc0fe2ec3c58b2f66b516ea",
    ),
    ("md5", "password", "5f4dcc3b5aa765d61d8327deb882cf99"),
    // Django's MD5PasswordHasher test vector `md5$seasalt$3f86…`: md5(salt + password).
    ("md5_salted", "lètmein", "seasalt$3f86d0d3d465b7b458c231bf3555c0e3"),
    // md5(password + salt), as Joomla 1.5 made them.
    ("md5_salted", "password", "NaCl$f25b019a9470318d44d60e1416631f34"),
    ("sha256", "test", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("sha256_salted", "password", "NaCl$b20ab74aa2549f7e13a0e886cb4471cc2e70fcd2ce8075c0ee6483abba6132f3"),
    ("sha256_salted", "password", "NaCl$028480971104b37691f41c430e59e07fd4c5ae0f53317b2aa2e06cf8ddbbfe10"),
    // The older `<hash>$<salt>` form.
    ("sha256_salted", "password", "b20ab74aa2549f7e13a0e886cb4471cc2e70fcd2ce8075c0ee6483abba6132f3$NaCl"),
    // HMAC-SHA256 over UTF-16LE, the key text as its bytes.
    ("hmac_sha256_utf16_b64", "password", "hmac_sha256_utf16_b64$XdpZkLEovhMdGpcXm+8W0il3gdMlbgLOz00PtFJdB8Y=$secret-key"),
    ("hmac_sha256_utf16_b64", "lètmein", "hmac_sha256_utf16_b64$9LN7a9voLkX5C1O5W3E0JX09upSRAnqig915xpECees=$clé"),
    // ASP.NET Membership's HMACSHA256: the base64 salt decoded and repeated to 64 bytes (the
    // password and salt of SqlMembershipAdapter's own tests).
    (
        "hmac_sha256_utf16_b64",
        "3GrM4v[eYgK-UT",
        "hmac_sha256_utf16_b64$MAGeDSl8buhfSBPHliCQZBhnhrYaNECioDonpeBJqJ4=$wZdnRVXWcvXZKY6HJmJqUg==",
    ),
    ("pbkdf2_sha1", "lètmein", "pbkdf2_sha1$30000$73656173616c7432$a4ccd4d7334f73275feb08e72456e254ac2050b7$20"),
    ("pbkdf2_sha256", "lètmein", "pbkdf2_sha256$30000$c2Vhc2FsdA==$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY="),
    ("pbkdf2_sha256_django", "lètmein", "pbkdf2_sha256$30000$seasalt$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY="),
    // The published PBKDF2-HMAC-SHA512 vector (password, salt, 2 iterations, 64 bytes), and
    // hashlib's pbkdf2_hmac with a text salt.
    (
        "pbkdf2_sha512",
        "password",
        "pbkdf2_sha512$2$salt$e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e",
    ),
    (
        "pbkdf2_sha512",
        "password",
        "pbkdf2_sha512$10000$somesalt$2b0e2c8489120b019a73094f3aa833a6a86bd118b72814763015d2f9353e3008d5355fbf42c6e72a48c1f255dd89f5d85a8ab90619322d7ad4ce01f00569398e",
    ),
    (
        "pbkdf2_sha512_hex",
        "password",
        "pbkdf2_sha512_hex$1$73616c74$867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce",
    ),
    ("phpass", "test12345", "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"),
    ("md5_phpass", "test1", "$H$9aaaaaSXBjgypwqm.JsMssPLiS8YQ00"),
    ("ldap_ssha", "secret", "{SSHA}0H+zTv8o4MR4H43n03eCsvw1luG8LdB7"),
    (
        "scrypt_werkzeug",
        "secret",
        "scrypt:32768:8:1$Nm8ZCvyUFqdUXhxq$1703b6c28f8817dbc2cccc9d97d8af2fe2265ed978324dbaaee5b3a3b78f06d52733b3439817e85504390b41e9c45ff08d88ee3d33c44879364728682a334f6c",
    ),
    (
        "scrypt_firebase",
        "user1password",
        "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$42xEC+ixf3L2lw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==$Bw==$8$14",
    ),
    (
        "sha512_symfony",
        "password",
        "sha512_symfony$5000$somesalt$H9VRzTCHUNwtJYgcPquobw1lhQeHUhZTCt/6e27sXzpFwmBjzcdBqpTgPCeIRacHLJPEyIBn+UpS6gQ6+USIdg==",
    ),
];
