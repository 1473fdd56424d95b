#!/bin/sh
# nginx entrypoint step (official image: /docker-entrypoint.d/05-auth-files.sh, runs before the
# templates are rendered). Also used as is by scripts/render-nginx.sh for the container-less stack.
#
# From AUTH_USERS ("user:password,...") and ADMIN_USERS ("user,...") it writes into $NGINX_AUTH_DIR:
#   htpasswd     user:{SSHA}<base64(sha1(password . salt) . salt)>, an 8-byte random salt per user
#                (no plaintext password in any file)
#   admins.map   "user" 1;   (included by the `map $remote_user $is_admin` block)
# NGINX_AUTH_HASH: ssha (default) | sha512 (SHA-512 crypt, $6$, 5000 rounds).
# Why not the slow hash by default: nginx checks the hash on every request, and SHA-512 crypt costs
# ~2-3 ms of CPU each time (more than the whole 2 ms the door may add; `make bench` measures it),
# also for every wrong password (a cheap way to burn nginx's CPU). A slow hash only helps when the
# hash file leaks and the password does not; this file is written at start from AUTH_USERS, which
# sits in the same container's environment and in .env, so whoever reads one reads the other, and
# `make init` passwords are 24 random characters (~143 bits) that no hash speed makes guessable.
# Keep hand-picked passwords? Set NGINX_AUTH_HASH=sha512 and pay the milliseconds.
# The nginx image has neither htpasswd nor openssl, and its perl-base has no Digest::SHA or
# MIME::Base64: SHA-1 and base64 are done in plain Perl there (64-bit perl), with the modules where
# they exist. sha512 uses perl's crypt(), the libcrypt nginx verifies with; where crypt() has no
# SHA-512 (macOS) it falls back to {SSHA}. Refuses to run (and so nginx to start) without at least
# one user: the GPU is never served without authentication, nor with a password shorter than 16
# characters unless ALLOW_WEAK_PASSWORDS=1.
set -eu

if ! command -v perl >/dev/null 2>&1; then
  echo "$0: perl not found - use the Debian nginx image (nginx:<version>), not -alpine" >&2
  exit 1
fi

exec perl -e '
use strict; use warnings;
my $dir = $ENV{NGINX_AUTH_DIR} || "/etc/nginx/auth";
my $me = "05-auth-files";
sub fail { print STDERR "$me: $_[0]\n"; exit 1 }

my (@users, %seen);
my $n = 0;
for my $entry (split /,/, ($ENV{AUTH_USERS} // "")) {
  $entry =~ s/^\s+|\s+$//g;
  next if $entry eq "";
  $n++;
  my ($name, $pw) = $entry =~ /^([^:]*):(.*)$/s or fail("AUTH_USERS entry #$n must look like user:password");
  fail("AUTH_USERS entry #$n: user name must match [A-Za-z0-9._@-]+") unless $name =~ /^[A-Za-z0-9._@-]+$/;
  fail("AUTH_USERS: user \"$name\" has an empty password") if $pw eq "";
  fail("AUTH_USERS: user \"$name\" is listed twice") if $seen{$name}++;
  push @users, [$name, $pw];
}
fail("AUTH_USERS is empty: refusing to serve the API without authentication (run `make init`)") unless @users;

# Weak passwords: this door is on the internet (the tunnel). Under 16 characters stops nginx, naming
# the user (never the password), unless ALLOW_WEAK_PASSWORDS=1. `make init` makes 24 random ones.
my $min = 16;
my @weak = map { $_->[0] } grep { my $c = $_->[1]; utf8::decode($c); length($c) < $min } @users;
if (@weak) {
  my $who = join(", ", map { "\"$_\"" } @weak);
  if (($ENV{ALLOW_WEAK_PASSWORDS} // "") =~ /^(1|true|yes)$/i) {
    print STDERR "$me: WARNING: password shorter than $min characters for user(s) $who (allowed by ALLOW_WEAK_PASSWORDS)\n";
  } else {
    fail("AUTH_USERS: the password of user(s) $who is shorter than $min characters: refusing to start, this door " .
         "faces the internet. Use long random passwords (`make init` generates 24 characters), or set " .
         "ALLOW_WEAK_PASSWORDS=1 to accept the risk.");
  }
}

my @admins;
for my $a (split /,/, ($ENV{ADMIN_USERS} // "")) {
  $a =~ s/^\s+|\s+$//g;
  next if $a eq "";
  fail("ADMIN_USERS: \"$a\" is not a user of AUTH_USERS") unless $seen{$a};
  push @admins, $a;
}

open(my $rnd, "<:raw", "/dev/urandom") or fail("cannot read /dev/urandom: $!");
my @alphabet = ("a".."z", "A".."Z", "0".."9", ".", "/");
sub salt { read($rnd, my $b, 16) == 16 or fail("short read from /dev/urandom"); join "", map { $alphabet[ord($_) % 64] } split //, $b }

my $want = lc($ENV{NGINX_AUTH_HASH} // "") || "ssha";
fail("NGINX_AUTH_HASH must be ssha or sha512, not \"$want\"") unless $want eq "ssha" || $want eq "sha512";
my $probe = crypt("probe", "\$6\$probesalt\$");
my $crypt6 = defined $probe && $probe =~ /^\$6\$/;
my $ssha = $want eq "ssha" || !$crypt6;
print STDERR "$me: crypt() here has no SHA-512: writing {SSHA} hashes instead\n" if $want eq "sha512" && !$crypt6;
if ($ssha && !eval { require Digest::SHA; 1 } && ~0 <= 4294967295) {
  # the plain-Perl SHA-1 below needs 64-bit integers
  fail("cannot hash the passwords: no Digest::SHA, a 32-bit perl, and crypt() has no SHA-512") unless $crypt6;
  print STDERR "$me: no Digest::SHA on a 32-bit perl: writing SHA-512 crypt hashes\n";
  $ssha = 0;
}

# SHA-1 (FIPS 180-4) and base64 in plain Perl, for perl-base without Digest::SHA / MIME::Base64
sub sha1 {
  return Digest::SHA::sha1($_[0]) if defined &Digest::SHA::sha1;
  my $msg = shift;
  my @h = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0);
  my $bits = length($msg) * 8;
  $msg .= "\x80" . ("\0" x ((55 - length($msg)) % 64)) . pack("NN", int($bits / 4294967296), $bits % 4294967296);
  for my $block (unpack("(a64)*", $msg)) {
    my @w = unpack("N16", $block);
    for my $t (16 .. 79) { my $x = $w[$t-3] ^ $w[$t-8] ^ $w[$t-14] ^ $w[$t-16]; $w[$t] = (($x << 1) | ($x >> 31)) & 0xffffffff }
    my ($a, $b, $c, $d, $e) = @h;
    for my $t (0 .. 79) {
      my ($f, $k) = $t < 20 ? ((($b & $c) | (~$b & $d)) & 0xffffffff, 0x5A827999)
                  : $t < 40 ? ($b ^ $c ^ $d, 0x6ED9EBA1)
                  : $t < 60 ? (($b & $c) | ($b & $d) | ($c & $d), 0x8F1BBCDC)
                  :           ($b ^ $c ^ $d, 0xCA62C1D6);
      ($a, $b, $c, $d, $e) = (((($a << 5) | ($a >> 27)) + $f + $e + $k + $w[$t]) & 0xffffffff, $a, (($b << 30) | ($b >> 2)) & 0xffffffff, $c, $d);
    }
    @h = map { ($h[$_] + ($a, $b, $c, $d, $e)[$_]) & 0xffffffff } 0 .. 4;
  }
  return pack("N5", @h);
}
sub b64 { # uuencode (pack "u") mapped to the base64 alphabet
  my $s = shift;
  my $r = join "", map { substr($_, 1) } split /\n/, pack("u", $s);
  $r =~ tr{` -_}{AA-Za-z0-9+/};
  my $pad = (3 - length($s) % 3) % 3;
  substr($r, -$pad) = "=" x $pad if $pad;
  return $r;
}

-d $dir or mkdir($dir, 0755) or fail("cannot create $dir: $!");
umask 022;
my $htpasswd = "";
for my $u (@users) {
  my $hash;
  if ($ssha) {
    read($rnd, my $s, 8) == 8 or fail("short read from /dev/urandom");
    $hash = "{SSHA}" . b64(sha1($u->[1] . $s) . $s);
  } else {
    $hash = crypt($u->[1], "\$6\$" . salt() . "\$");
    fail("crypt() failed") unless defined $hash && $hash =~ /^\$6\$/;
  }
  $htpasswd .= "$u->[0]:$hash\n";
}
my $map = join "", map { "\"$_\" 1;\n" } @admins;

for ([htpasswd => $htpasswd], ["admins.map" => $map]) {
  my ($file, $content) = @$_;
  open(my $fh, ">", "$dir/$file.tmp") or fail("cannot write $dir/$file.tmp: $!");
  print $fh $content; close($fh) or fail("cannot write $dir/$file.tmp: $!");
  chmod(0644, "$dir/$file.tmp");
  rename("$dir/$file.tmp", "$dir/$file") or fail("cannot rename $dir/$file.tmp: $!");
}
printf "%s: %d user(s), admin(s): %s -> %s\n", $me, scalar(@users), (@admins ? join(", ", @admins) : "none"), $dir;
'
