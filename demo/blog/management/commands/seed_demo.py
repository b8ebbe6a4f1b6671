"""``manage.py seed_demo``: sample authors and entries for the demo. Idempotent."""

import datetime

from django.core.management.base import BaseCommand
from django.db import transaction

from blog.models import Author, Entry

AUTHORS = {
    "john": ("John Lennon", "john@example.com"),
    "paul": ("Paul McCartney", "paul@example.com"),
    "george": ("George Harrison", "george@example.com"),
    "ringo": ("Ringo Starr", "ringo@example.com"),
}

BLOGS = {
    "beatles": {"name": "Beatles Blog", "tagline": "Beatles tour of the Americas."},
    "mongo": {"name": "Mongo Diaries", "tagline": "Documents, not rows."},
    "rust": {"name": "Rust Notes", "tagline": "Fearless compilers."},
}

# (headline, blog, author, contributors, pub_date, n_comments)
ENTRIES = [
    ("Please Please Me", "beatles", "john", ["paul"], (1963, 3, 22), 12),
    ("With the Beatles", "beatles", "paul", [], (1963, 11, 22), 8),
    ("A Hard Day's Night", "beatles", "john", ["george"], (1964, 7, 10), 21),
    ("Help!", "beatles", "john", [], (1965, 8, 6), 17),
    ("Rubber Soul", "beatles", "george", ["ringo"], (1965, 12, 3), 9),
    ("Abbey Road", "beatles", "paul", ["john", "ringo"], (1969, 9, 26), 30),
    ("Embedding versus referencing", "mongo", "george", [], (2023, 1, 15), 4),
    ("Aggregation pipelines explained", "mongo", "ringo", ["paul"], (2023, 4, 2), 6),
    ("Indexes that allow many NULLs", "mongo", "paul", [], (2023, 9, 30), 2),
    ("Parsing SQL with sqlparser", "rust", "ringo", [], (2024, 2, 11), 5),
    ("From SQL to $lookup", "rust", "john", ["george"], (2024, 6, 18), 7),
    ("An embedded engine on redb", "rust", "george", [], (2024, 11, 5), 3),
]


class Command(BaseCommand):
    help = "Load the demo's sample authors and entries (safe to run more than once)."

    def handle(self, *args, **options) -> None:
        created_authors = created_entries = 0
        with transaction.atomic():
            authors = {}
            for key, (name, email) in AUTHORS.items():
                author, created = Author.objects.get_or_create(email=email, defaults={"name": name})
                authors[key] = author
                created_authors += created
            for headline, blog, author, contributors, date, comments in ENTRIES:
                if Entry.objects.filter(headline=headline).exists():
                    continue
                entry = Entry.objects.create(
                    blog=dict(BLOGS[blog]),
                    headline=headline,
                    body_text=f"{headline}: a sample entry of the {BLOGS[blog]['name']}.",
                    pub_date=datetime.date(*date),
                    n_comments=comments,
                    author=authors[author],
                )
                if contributors:
                    entry.contributors.set([authors[key] for key in contributors])
                created_entries += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"seed_demo: {created_authors} authors and {created_entries} entries added "
                f"({Author.objects.count()} authors, {Entry.objects.count()} entries in total)"
            )
        )
