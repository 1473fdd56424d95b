import { classifyAddress } from '../../src/clients/net-guard';

describe('classifyAddress (pure: no traffic)', () => {
  test.each([
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.254',
    '192.168.1.1', // private
    '127.0.0.1',
    '127.1.2.3',
    '::1', // loopback
    '169.254.169.254',
    'fe80::1', // link-local, cloud metadata
    '100.64.0.1', // CGNAT
    '0.0.0.0',
    '::',
    '255.255.255.255',
    '224.0.0.251',
    'ff02::1', // unspecified, broadcast, multicast
    'fd12:3456::1',
    'fc00::1', // unique local
    '::ffff:192.168.1.1',
    '::ffff:7f00:1',
    '::127.0.0.1', // IPv4 hidden in IPv6
    '64:ff9b::a00:1',
    '2002:c0a8:101::1', // NAT64 / 6to4 wrapping private IPv4
    '192.0.2.1',
    '2001:db8::1', // documentation
  ])('When the address is %s, then it is refused', (address) => {
    expect(classifyAddress(address).allowed).toBe(false);
  });

  test.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    'When the address is public (%s), then it is allowed',
    (address) => {
      expect(classifyAddress(address)).toEqual({ allowed: true });
    },
  );

  test('When the input is a name, not an address, then it is refused', () => {
    expect(classifyAddress('localhost')).toEqual({ allowed: false, reason: "'localhost' is not an IP address" });
  });
});
