"""A table's MongoDB ``validator``: its CHECK constraints and its model's ``$jsonSchema``.

MongoDB gives a collection one validator; djongo composes it from

- each CHECK constraint (Django's ``CheckConstraint`` and the column checks of
  ``PositiveIntegerField`` & co.), as one ``$expr`` clause that names itself::

      {"$expr": {"$let": {"vars": {"check": {"$literal": "price_gt_0"}},
                          "in": <true unless the condition is FALSE>}}}

  (the compiler turns the CHECK's SQL into the condition: a row passes when it
  is TRUE or NULL, as in SQL);
- the ``$jsonSchema`` generated from a model that opts in
  (``djongo.models.JSONSchemaValidation``);
- any clause set by other means (a validator made by hand), which is kept;

joined by ``$and``. The validator itself is the record: introspection reads
the constraints back from ``listCollections``, and a constraint's name travels
with the error a failing write gets, so it holds on a real MongoDB as on the
embedded engine, and for writes that do not come through Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.client_session import ClientSession
from pymongo.database import Database

from .database import IntegrityError

# The $let variable naming a CHECK clause.
CHECK_VAR = "check"


@dataclass
class Check:
    name: str
    condition: Any

    def clause(self) -> dict:
        return {"$expr": {"$let": {"vars": {CHECK_VAR: {"$literal": self.name}},
                                   "in": self.condition}}}

    @property
    def columns(self) -> list[str]:
        """The columns the condition reads, in order of appearance."""
        return field_columns(self.condition)


def check_name(clause: Any) -> str | None:
    """The name of a CHECK clause (as ``Check.clause`` writes it), else None."""
    if not isinstance(clause, dict) or set(clause) != {"$expr"}:
        return None
    let = clause["$expr"].get("$let") if isinstance(clause["$expr"], dict) else None
    if not isinstance(let, dict) or set(let) != {"vars", "in"}:
        return None
    name = (let["vars"] or {}).get(CHECK_VAR) if isinstance(let["vars"], dict) else None
    if isinstance(name, dict) and set(name) == {"$literal"}:
        name = name["$literal"]
    return name if isinstance(name, str) else None


@dataclass
class CollectionValidator:
    checks: list[Check] = field(default_factory=list)
    json_schema: dict | None = None
    others: list[dict] = field(default_factory=list)
    level: str | None = None
    action: str | None = None

    @classmethod
    def read(cls, db: Database, collection: str,
             session: ClientSession | None) -> CollectionValidator:
        infos = list(db.list_collections(filter={"name": collection}, session=session))
        options = infos[0].get("options", {}) if infos else {}
        found = cls(level=options.get("validationLevel"), action=options.get("validationAction"))
        spec = options.get("validator") or {}
        clauses = spec["$and"] if set(spec) == {"$and"} and isinstance(spec["$and"], list) \
            else ([spec] if spec else [])
        for clause in clauses:
            name = check_name(clause)
            if name is not None:
                found.checks.append(Check(name, clause["$expr"]["$let"]["in"]))
            elif isinstance(clause, dict) and set(clause) == {"$jsonSchema"} \
                    and found.json_schema is None:
                found.json_schema = clause["$jsonSchema"]
            else:
                found.others.append(clause)
        return found

    def document(self) -> dict:
        clauses = [*self.others, *(c.clause() for c in self.checks)]
        if self.json_schema is not None:
            clauses.append({"$jsonSchema": self.json_schema})
        if not clauses:
            return {}
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def write(self, db: Database, collection: str, session: ClientSession | None) -> None:
        options: dict[str, Any] = {"validator": self.document()}
        if options["validator"]:
            options["validationLevel"] = self.level or "strict"
            options["validationAction"] = self.action or "error"
        if collection in db.list_collection_names(filter={"name": collection}, session=session):
            db.command("collMod", collection, session=session, **options)
        else:
            db.create_collection(collection, session=session, **options)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


# -- what the executor does to a table's validator ---------------------------------------


def add_checks(db: Database, collection: str, checks: list[dict],
               session: ClientSession | None) -> None:
    """Adds CHECK constraints (the compiler's ``{name, expr, ...}``) to the table.

    As in SQL, adding one that existing rows violate fails, and changes nothing.
    """
    if not checks:
        return
    validator = CollectionValidator.read(db, collection, session)
    for spec in checks:
        name = spec["name"]
        if validator.check(name) is not None:
            raise IntegrityError(f"constraint {name!r} of table {collection!r} already exists")
        new = Check(name, spec["expr"])
        if db[collection].find_one({"$nor": [new.clause()]}, {"_id": 1}, session=session):
            raise IntegrityError(f"CHECK constraint {name} is violated by some row of "
                                 f"{collection}")
        validator.checks.append(new)
    validator.write(db, collection, session)


def drop_check(db: Database, collection: str, name: str,
               session: ClientSession | None) -> bool:
    """Drops the CHECK constraint ``name``; whether the table had one."""
    validator = CollectionValidator.read(db, collection, session)
    kept = [c for c in validator.checks if c.name != name]
    if len(kept) == len(validator.checks):
        return False
    validator.checks = kept
    validator.write(db, collection, session)
    return True


def rename_field(db: Database, collection: str, old: str, new: str,
                 session: ClientSession | None) -> None:
    """Makes the validator read column ``old`` as ``new`` (before the documents change)."""
    validator = CollectionValidator.read(db, collection, session)
    if not validator.checks and validator.json_schema is None:
        return
    for check in validator.checks:
        check.condition = _rename_paths(check.condition, old, new)
    if validator.json_schema is not None:
        validator.json_schema = _rename_property(validator.json_schema, old, new)
    validator.write(db, collection, session)


def drop_field(db: Database, collection: str, column: str,
               session: ClientSession | None) -> None:
    """Forgets column ``column``: the CHECKs reading it are dropped (as PostgreSQL drops
    the constraints of a dropped column), and the schema stops describing it."""
    validator = CollectionValidator.read(db, collection, session)
    checks = [c for c in validator.checks if column not in c.columns]
    schema = validator.json_schema
    if schema is not None:
        schema = _drop_property(schema, column)
    if len(checks) == len(validator.checks) and schema == validator.json_schema:
        return
    validator.checks, validator.json_schema = checks, schema
    validator.write(db, collection, session)


def set_json_schema(db: Database, collection: str, schema: dict | None, level: str | None,
                    action: str | None, session: ClientSession | None) -> None:
    """Installs (or, with None, removes) the table's generated ``$jsonSchema``."""
    validator = CollectionValidator.read(db, collection, session)
    validator.json_schema = schema
    validator.level, validator.action = (level, action) if schema is not None else (None, None)
    validator.write(db, collection, session)


# -- expressions -------------------------------------------------------------------------


def field_columns(expr: Any) -> list[str]:
    """The top-level fields an aggregation expression reads (``"$a.b"`` reads ``a``)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            if node.startswith("$") and not node.startswith("$$"):
                column = node[1:].split(".", 1)[0]
                if column not in found:
                    found.append(column)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key != "$literal":
                    walk(value)

    walk(expr)
    return found


def _rename_paths(expr: Any, old: str, new: str) -> Any:
    if isinstance(expr, str):
        if expr == f"${old}" or expr.startswith(f"${old}."):
            return f"${new}" + expr[len(old) + 1:]
        return expr
    if isinstance(expr, list):
        return [_rename_paths(item, old, new) for item in expr]
    if isinstance(expr, dict):
        return {k: (v if k == "$literal" else _rename_paths(v, old, new)) for k, v in expr.items()}
    return expr


def _rename_property(schema: dict, old: str, new: str) -> dict:
    schema = dict(schema)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {(new if k == old else k): v
                                for k, v in schema["properties"].items()}
    if isinstance(schema.get("required"), list):
        schema["required"] = [new if k == old else k for k in schema["required"]]
    return schema


def _drop_property(schema: dict, column: str) -> dict:
    schema = dict(schema)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: v for k, v in schema["properties"].items() if k != column}
    if isinstance(schema.get("required"), list):
        required = [k for k in schema["required"] if k != column]
        if required:
            schema["required"] = required
        else:
            del schema["required"]
    return schema


# -- errors ------------------------------------------------------------------------------


def describe_failure(error: dict) -> str:
    """The message of the ``IntegrityError`` for a write error 121 (DocumentValidationFailure).

    Names the CHECK constraints the document violates (SQLite's wording), or
    the fields that failed the ``$jsonSchema`` and why.
    """
    info = error.get("errInfo") or {}
    if "foreignKey" in info:
        # The engine's foreign key check (crates/server/src/foreign_keys.rs).
        return str(error.get("errmsg"))
    details = info.get("details")
    checks: list[str] = []
    fields: list[str] = []
    _explain(details, "", checks, fields)
    doc_id = info.get("failingDocumentId")
    where = f" (document _id={doc_id!r})" if doc_id is not None else ""
    if checks:
        return f"CHECK constraint failed: {', '.join(dict.fromkeys(checks))}{where}"
    if fields:
        return f"document failed schema validation{where}: {'; '.join(fields)}"
    return f"document failed the collection's validator{where}: {details!r}"


# Where mongod's errInfo nests the errors that explain an operator's failure.
_CHILDREN = ("schemaRulesNotSatisfied", "clausesNotSatisfied", "clausesSatisfied",
             "schemasNotSatisfied", "failingDependencies", "details")


def _explain(node: Any, path: str, checks: list[str], fields: list[str]) -> None:
    """Collects from ``errInfo.details`` the CHECKs (by name) and the fields (by
    path, with the rule they break) that a document failed."""
    if isinstance(node, list):
        for item in node:
            _explain(item, path, checks, fields)
        return
    if not isinstance(node, dict):
        return
    name = check_name(node.get("specifiedAs"))
    if name is not None:
        checks.append(name)
        return
    operator = node.get("operatorName")
    prefix = f"{path}." if path else ""
    if operator == "required":
        missing = node.get("missingProperties", ())
        fields.extend(f"field {prefix + p!r} is required" for p in missing)
    elif operator == "properties":
        for prop in node.get("propertiesNotSatisfied", ()):
            _explain(prop.get("details"), f"{prefix}{prop.get('propertyName')}", checks, fields)
    elif "itemIndex" in node and "details" in node:
        _explain(node["details"], f"{prefix}{node['itemIndex']}", checks, fields)
    elif "conditionalProperty" in node and "missingProperties" in node:
        fields.extend(f"field {prefix + p!r} is required with {node['conditionalProperty']!r}"
                      for p in node["missingProperties"])
    elif "reason" not in node and any(key in node for key in _CHILDREN):
        for key in _CHILDREN:
            _explain(node.get(key), path, checks, fields)
    elif operator is not None:
        specified = node.get("specifiedAs")
        rule = f"{operator} {specified[operator]!r}" if isinstance(specified, dict) \
            and operator in specified else operator
        subject = f"field {path!r}" if path else "the document"
        fields.append(f"{subject}: {rule}: {node.get('reason', 'failed')}")
