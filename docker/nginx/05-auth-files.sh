#!/bin/sh
# nginx entrypoint step (official image: /docker-entrypoint.d/05-auth-files.sh, runs before the
# templates are rendered). Also used as is by scripts/render-nginx.sh for the container-less stack.
#
# From AUTH_USERS ("user:password,...") and ADMIN_USERS ("user,...") it writes into $NGINX_AUTH_DIR:
#   htpasswd     user:$6$<random salt>$<sha512-crypt>   (no plaintext password in any file)
#   admins.map   "user" 1;   (included by the `map $remote_user $is_admin` block)
# The nginx image has neither htpasswd nor openssl, but the Debian flavour has perl, whose crypt()
# is the same libcrypt nginx's auth_basic verifies with. Where crypt() has no SHA-512 (macOS, for
# scripts/local-stack.sh there) it writes {SSHA} entries, which nginx checks by itself
# (NGINX_AUTH_HASH=ssha forces that, for the tests). Refuses to run (and so nginx to start)
# without at least one user: the GPU is never served without authentication.
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

my $probe = crypt("probe", "\$6\$probesalt\$");
my $ssha = ($ENV{NGINX_AUTH_HASH} // "") eq "ssha" || !(defined $probe && $probe =~ /^\$6\$/);
if ($ssha) {
  eval { require Digest::SHA; require MIME::Base64; 1 }
    or fail("crypt() here has no SHA-512 and perl has no Digest::SHA: cannot hash the passwords");
  print STDERR "$me: writing {SSHA} hashes (crypt() here has no SHA-512, or NGINX_AUTH_HASH=ssha)\n";
}

-d $dir or mkdir($dir, 0755) or fail("cannot create $dir: $!");
umask 022;
my $htpasswd = "";
for my $u (@users) {
  my $hash;
  if ($ssha) {
    read($rnd, my $s, 8) == 8 or fail("short read from /dev/urandom");
    $hash = "{SSHA}" . MIME::Base64::encode_base64(Digest::SHA::sha1($u->[1] . $s) . $s, "");
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
