/**
 * Which addresses a URL given by a caller may reach. The appliance sits in a home network: a
 * fetch of a caller's image URL must never reach the router, the NAS, the Docker network, the
 * cloud metadata address or the appliance itself. Only public unicast addresses pass.
 */
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
// IPv4 (RFC 6890 special-purpose registry, plus multicast and reserved)
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (this box is behind CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private (Docker's default networks)
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private (home LAN)
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
// IPv6
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (embeds IPv4)
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, ...)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds IPv4)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped or -compatible IPv6 address (::ffff:a.b.c.d), if any. */
function embeddedIPv4(address: string): string | null {
  const m = /^(?:0{0,4}:){0,5}(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address.replace(/^::/, '0:0:0:0:0:'));
  if (m) return m[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

/** Pure classification: no traffic. */
export function classifyAddress(address: string): AddressVerdict {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return { allowed: false, reason: `'${address}' is not an IP address` };
  if (family === 6) {
    const v4 = embeddedIPv4(bare.toLowerCase());
    if (v4) return classifyAddress(v4);
    return blocked.check(bare, 'ipv6') ? { allowed: false, reason: `${bare} is a private, loopback, link-local or reserved address` } : { allowed: true };
  }
  return blocked.check(bare, 'ipv4') ? { allowed: false, reason: `${bare} is a private, loopback, link-local or reserved address` } : { allowed: true };
}
