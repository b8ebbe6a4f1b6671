"""Django's CHECK constraints (``CheckConstraint``, the column checks of
``PositiveIntegerField`` & co.), enforced by the server as the collection's validator."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.test.utils import isolate_apps
from pymongo.errors import WriteError

from tests.validationapp.models import Article, Product

pytestmark = pytest.mark.django_db


def options_of(table: str) -> dict:
    db = connection.connection.database
    infos = list(db.list_collections(filter={"name": table},
                                     session=connection.connection.session_for_statement()))
    return infos[0]["options"]


def test_a_row_violating_a_check_is_refused_naming_the_constraint():
    Product.objects.create(name="ok", price=Decimal("10"), discounted_price=Decimal("8"))
    with pytest.raises(IntegrityError, match="CHECK constraint failed: price_gt_discount"), \
            transaction.atomic():
        Product.objects.create(name="bad", price=Decimal("10"), discounted_price=Decimal("12"))
    with pytest.raises(IntegrityError, match="price_gt_0"), transaction.atomic():
        Product.objects.create(name="free", price=Decimal("0"))
    assert list(Product.objects.values_list("name", flat=True)) == ["ok"]


def test_null_passes_a_check_as_in_sql():
    # price > discounted_price is UNKNOWN for a NULL discount: the row is accepted.
    Product.objects.create(name="no discount", price=Decimal("3"), discounted_price=None)
    assert Product.objects.count() == 1


def test_positive_fields_have_column_checks():
    with pytest.raises(IntegrityError, match="validationapp_product_stock_check"), \
            transaction.atomic():
        Product.objects.create(name="x", price=Decimal("1"), stock=-1)


def test_updates_and_bulk_writes_are_checked():
    p = Product.objects.create(name="p", price=Decimal("5"), discounted_price=Decimal("4"))
    with pytest.raises(IntegrityError, match="price_gt_discount"), transaction.atomic():
        Product.objects.filter(pk=p.pk).update(discounted_price=F("price") + 1)
    with pytest.raises(IntegrityError, match="price_gt_0"), transaction.atomic():
        Product.objects.bulk_create([Product(name="a", price=Decimal("1")),
                                     Product(name="b", price=Decimal("-1"))])
    p.refresh_from_db()
    assert p.discounted_price == Decimal("4")
    assert Product.objects.count() == 1


def test_the_validator_holds_for_writes_that_bypass_django(mongo_db):
    with pytest.raises(WriteError) as exc:
        mongo_db["validationapp_product"].insert_one({"id": 99, "name": "raw", "price": -5})
    assert exc.value.code == 121


def test_each_check_is_an_expr_clause_of_the_validator():
    validator = options_of("validationapp_product")["validator"]
    names = [c["$expr"]["$let"]["vars"]["check"]["$literal"] for c in validator["$and"]]
    assert names == ["validationapp_product_stock_check", "price_gt_0", "price_gt_discount"]


def test_introspection_reports_check_constraints():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "validationapp_product")
    checks = {name: c["columns"] for name, c in constraints.items() if c["check"]}
    assert checks == {"validationapp_product_stock_check": ["stock"], "price_gt_0": ["price"],
                      "price_gt_discount": ["price", "discounted_price"]}


def test_model_validation_reports_the_check_without_the_database():
    with pytest.raises(Exception, match="price_gt_discount"):
        Product(name="x", price=Decimal("1"), discounted_price=Decimal("2")).full_clean()


@pytest.mark.django_db(transaction=True)
@isolate_apps("tests.validationapp")
def test_schema_editor_adds_removes_and_renames_checks():
    class Gadget(models.Model):
        weight = models.IntegerField(null=True)
        size = models.IntegerField(default=1)

        class Meta:
            app_label = "validationapp"

    with connection.schema_editor() as editor:
        editor.create_model(Gadget)
    try:
        Gadget.objects.create(weight=-3)
        heavy = models.CheckConstraint(condition=Q(weight__gte=0), name="gadget_weight_gte_0")
        # As in SQL, a CHECK that existing rows violate cannot be added.
        with pytest.raises(IntegrityError, match="violated by some row"):
            with connection.schema_editor() as editor:
                editor.add_constraint(Gadget, heavy)
        Gadget.objects.all().delete()
        with connection.schema_editor() as editor:
            editor.add_constraint(Gadget, heavy)
        with pytest.raises(IntegrityError, match="gadget_weight_gte_0"):
            Gadget.objects.create(weight=-1)
        # Renaming the column keeps the check on it.
        old = Gadget._meta.get_field("weight")
        new = models.IntegerField(null=True)
        new.set_attributes_from_name("mass")
        with connection.schema_editor() as editor:
            editor.alter_field(Gadget, old, new)
        db = connection.connection.database
        with pytest.raises(WriteError):
            db["validationapp_gadget"].insert_one({"mass": -1})
        db["validationapp_gadget"].insert_one({"weight": -1})  # no longer checked
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, "validationapp_gadget")
        assert constraints["gadget_weight_gte_0"]["columns"] == ["mass"]
        with connection.schema_editor() as editor:
            editor.remove_constraint(Gadget, heavy)
        db["validationapp_gadget"].insert_one({"mass": -1})
        # Dropping a column drops the checks that read it.
        size = Gadget._meta.get_field("size")
        with connection.schema_editor() as editor:
            editor.add_constraint(Gadget, models.CheckConstraint(condition=Q(size__lt=10),
                                                                 name="gadget_small"))
            editor.remove_field(Gadget, size)
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, "validationapp_gadget")
        assert not any(c["check"] for c in constraints.values())
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Gadget)


def test_check_and_schema_share_the_validator():
    Article.objects.create(title="fine", rating=2)
    with pytest.raises(IntegrityError, match="rating_at_least_1"), transaction.atomic():
        Article.objects.create(title="low", rating=0)
    clauses = options_of("validationapp_article")["validator"]["$and"]
    assert [next(iter(c)) for c in clauses] == ["$expr", "$jsonSchema"]
