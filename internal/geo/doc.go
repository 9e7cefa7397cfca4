// Package geo attributes a client address to a country and an autonomous
// system (ASN and organisation name) from open or user-supplied data files.
//
// Two file kinds are supported, both sniffed from their content:
//
//   - MaxMind DB files (https://maxmind.github.io/MaxMind-DB/): the CC0
//     ip-location-db "geo-whois-asn-country" database (records
//     {country_code: "XX"}), GeoLite2/GeoIP2 Country or City databases
//     (country.iso_code, falling back to registered_country.iso_code) and
//     GeoLite2-ASN / GeoIP2-ISP databases (autonomous_system_number,
//     autonomous_system_organization).
//   - IP range CSV files in the DB-IP / RouteViews layout published by
//     ip-location-db ("range_start,range_end,asn,org", plain or gzip), loaded
//     into a compact sorted range table searched by binary search.
//
// A DB is read-only after Open and safe for concurrent use. A nil or empty DB
// answers every lookup with "unknown" (Country "" and ASN 0), so the product
// runs without any data file; callers decide whether an Open error is fatal.
//
// The DB-IP ASN data is licensed CC BY 4.0 and requires a visible credit:
// show [Credits] wherever attribution results are displayed.
package geo

// Credits is the attribution text the open data sets require (DB-IP IP to
// ASN Lite, RouteViews and NRO statistics: CC BY 4.0; ip-location-db
// country database: CC0). Show it in the NOTICE file, the README and any user
// interface that displays country or ASN attribution.
const Credits = `IP to ASN data: "IP to ASN Lite" by DB-IP (https://db-ip.com), licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); IP Geolocation by DB-IP.
IP to ASN data: Route Views (https://www.routeviews.org), licensed CC BY 4.0.
Registry statistics: Number Resource Organization (https://www.nro.net), licensed CC BY 4.0.
Country data: ip-location-db geo-whois-asn-country (https://github.com/sapics/ip-location-db), CC0 1.0.`

// CreditsHTML is the link credit DB-IP asks web pages to carry when they
// display or use results from its database.
const CreditsHTML = `<a href="https://db-ip.com">IP Geolocation by DB-IP</a>`
