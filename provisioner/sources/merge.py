"""Several sources -> one identity per person.

The authoritative source (merge.authoritative, else the first listed)
decides who exists, whether they are active (through its attributes) and
what their key is. Every other source is joined to it on a value: the
authoritative source's join attribute (merge.join.<name>, else its key)
against each other source's join attribute, compared ignoring case.

Each attribute of a merged identity comes from the first source in its
precedence list (merge.<attribute> = ["ldap", "hr"]) that has a value;
sources not in the list never supply it. An attribute without a list takes
the sources in their [[sources]] order.

A record only a non-authoritative source has is reported under `unmatched`,
never provisioned. A record a non-authoritative source rejects (a broken
mail), and two records of one such source with the same join value (which
one is meant is unknown), are reported under the key of the person they
join, with the source's name: that person is held, neither created, updated
nor disabled on any target, until it is fixed. Merging them without it would
fill their attributes from the other sources' fallbacks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Mapping

from provisioner.model import Identity, Rejected, SourceResult, Upcoming


def merge_sources(results: Mapping[str, SourceResult], join: Mapping[str, str], authoritative: str,
                  precedence: Mapping[str, list[str]]) -> SourceResult:
    """`results` in [[sources]] order; `join` names each source's join attribute."""
    order = list(results)
    main = results[authoritative]
    others = [n for n in order if n != authoritative]

    rejected: list[Rejected] = [_prefixed(authoritative, r) for r in main.rejected]
    held = list(main.held)
    index: dict[str, dict[str, Identity]] = {}
    # (source, record) for every record another source could not use
    elsewhere: list[tuple[str, Rejected]] = []
    for name in others:
        by_value: dict[str, list[Identity]] = defaultdict(list)
        for identity in results[name].identities:
            value = identity.attrs.get(join[name])
            if isinstance(value, str) and value:
                by_value[value.casefold()].append(identity)
        index[name] = {}
        for value, identities in by_value.items():
            if len(identities) == 1:
                index[name][value] = identities[0]
                continue
            rows = ", ".join(str(i.row) for i in identities)
            for identity in identities:
                elsewhere.append((name, Rejected(
                    identity.row or 0, identity.key,
                    f"{join[name]} {identity.attrs[join[name]]!r} is on several records ({rows}); "
                    "which one to join is unknown", attrs=identity.attrs)))
        elsewhere.extend((name, r) for r in results[name].rejected)

    withheld = _carry_to_people(elsewhere, main, join, authoritative, rejected)

    joined: dict[str, set[str]] = {n: set() for n in others}

    def partners(attrs: Mapping) -> dict[str, Mapping]:
        """The authoritative record's attrs and its partners' by source; partners count as joined."""
        value = attrs.get(join[authoritative])
        found = {authoritative: attrs}
        if isinstance(value, str):
            for name in others:
                partner = index[name].get(value.casefold())
                if partner is not None:
                    found[name] = partner.attrs
                    joined[name].add(value.casefold())
        return found

    def combine(found: dict[str, Mapping]) -> dict:
        names = dict.fromkeys(a for attrs in found.values() for a in attrs)
        out = {}
        for attr in names:
            for name in precedence.get(attr, order):
                value = found.get(name, {}).get(attr)
                if value is not None:
                    out[attr] = value
                    break
        return out

    identities = [replace(i, attrs=combine(partners(i.attrs)))
                  for i in main.identities if i.key.casefold() not in withheld]
    upcoming = [Upcoming(u.identity, u.change, u.date, combine(partners(u.attrs))) for u in main.upcoming]

    # people the authoritative source knows but holds back (future hires,
    # rejected rows) are not "only in" the other source
    known = {k.casefold() for k in held} | {r.key.casefold() for r in main.rejected if r.key}
    unmatched = []
    for name in others:
        for identity in results[name].identities:
            value = identity.attrs.get(join[name])
            folded = value.casefold() if isinstance(value, str) and value else None
            if folded is not None and (folded in joined[name] or folded in known):
                continue
            if folded is not None and folded not in index[name]:
                continue  # a duplicate join value, rejected above
            unmatched.append(Rejected(identity.row or 0, value or identity.key,
                                      f"{name}: only in {name}, not in {authoritative} (the "
                                      f"authoritative source); not provisioned"))

    counts = {name: count(results[name]) for name in order}
    for name in others:
        counts[name]["unmatched"] = sum(1 for u in unmatched if u.reason.startswith(f"{name}:"))
    return SourceResult(identities=tuple(identities), rejected=tuple(rejected), held=tuple(held),
                        upcoming=tuple(upcoming), counts=counts, unmatched=tuple(unmatched))


def count(result: SourceResult) -> dict[str, int]:
    out = {"identities": len(result.identities), "rejected": len(result.rejected)}
    if result.held:
        out["held"] = len(result.held)
    return out


def _carry_to_people(elsewhere, main: SourceResult, join: Mapping[str, str], authoritative: str,
                     rejected: list[Rejected]) -> set[str]:
    """Report each record under the key of the person it joins (else its join value); the
    folded keys of the people so held."""
    people: dict[str, str] = {}
    for identity in main.identities:
        value = identity.attrs.get(join[authoritative])
        if isinstance(value, str) and value:
            people.setdefault(value.casefold(), identity.key)
    withheld = set()
    for name, record in elsewhere:
        value = record.attrs.get(join[name])
        value = value if isinstance(value, str) and value else None
        person = people.get(value.casefold()) if value else None
        if person is not None:
            withheld.add(person.casefold())
        rejected.append(replace(_prefixed(name, record), key=person or value or record.key))
    return withheld


def _prefixed(name: str, rejected: Rejected) -> Rejected:
    return replace(rejected, reason=f"{name}: {rejected.reason}", source=name)
