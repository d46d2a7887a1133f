"""SQLAlchemy 1.4: the ORM's lazy and eager loading, and its ways to insert."""
from sqlalchemy import (Column, ForeignKey, Integer, Numeric, String, create_engine, func, insert,
                        literal, select)
from sqlalchemy.orm import (Session, declarative_base, joinedload, relationship, selectinload,
                            subqueryload)

Base = declarative_base()


class Customer(Base):
    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    name = Column(String, nullable=False)
    orders = relationship("Order", back_populates="customer")


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False)
    total = Column(Numeric(10, 2), nullable=False)
    customer = relationship("Customer", back_populates="orders")


class Event(Base):
    __tablename__ = "events"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, nullable=False)
    kind = Column(String, nullable=False)
    amount = Column(Integer, nullable=False)


ROWS = 50


def engine(url, driver="psycopg2"):
    return create_engine(url.replace("postgresql://", f"postgresql+{driver}://"), future=True)


def lazy_one_to_many(url):
    with Session(engine(url)) as s:
        for c in s.query(Customer).all():
            sum(o.total for o in c.orders)


def lazy_one_to_many_long_list(url):
    # 60 customers, more than pglens once sampled of a result (20 rows).
    with Session(engine(url)) as s:
        s.execute(insert(Customer.__table__).from_select(
            ["name"], select(literal("more")).select_from(func.generate_series(1, 40))))
        s.commit()
        for c in s.query(Customer).all():
            sum(o.total for o in c.orders)


def lazy_many_to_one(url):
    with Session(engine(url)) as s:
        for o in s.query(Order).order_by(Order.id).all():
            o.customer.name


def eager(option):
    def run(url):
        with Session(engine(url)) as s:
            for c in s.query(Customer).options(option(Customer.orders)).all():
                sum(o.total for o in c.orders)
    return run


def commit_per_row(url):
    with Session(engine(url)) as s:
        for i in range(ROWS):
            s.add(Event(customer_id=i % 20 + 1, kind="click", amount=i))
            s.commit()


def commit_per_row_reading_ids(url):
    # Each commit expires the object: reading its id afterwards SELECTs it again.
    ids = []
    with Session(engine(url)) as s:
        for i in range(ROWS):
            event = Event(customer_id=i % 20 + 1, kind="click", amount=i)
            s.add(event)
            s.commit()
            ids.append(event.id)


def add_all_one_commit(url):
    with Session(engine(url)) as s:
        s.add_all([Event(customer_id=i % 20 + 1, kind="click", amount=i) for i in range(ROWS)])
        s.commit()


def bulk_insert_mappings(url):
    with Session(engine(url)) as s:
        s.bulk_insert_mappings(Event, [dict(customer_id=i % 20 + 1, kind="click", amount=i)
                                       for i in range(ROWS)])
        s.commit()


def bulk_save_objects(url):
    with Session(engine(url)) as s:
        s.bulk_save_objects([Event(customer_id=i % 20 + 1, kind="click", amount=i)
                             for i in range(ROWS)])
        s.commit()


def core_executemany(url):
    with engine(url).begin() as c:
        c.execute(insert(Event.__table__), [dict(customer_id=i % 20 + 1, kind="click", amount=i)
                                            for i in range(ROWS)])


def core_multi_values(url):
    with engine(url).begin() as c:
        c.execute(insert(Event.__table__).values([dict(customer_id=i % 20 + 1, kind="click",
                                                       amount=i) for i in range(ROWS)]))


def asyncpg_lazy_many_to_one(url):
    # SQLAlchemy 1.4's asyncio extension on asyncpg: lazy loading must be spelled out there, so
    # the loop awaits each customer (AsyncSession.get), as such code does.
    import asyncio
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    async def main():
        e = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        async with AsyncSession(e) as s:
            orders = (await s.execute(select(Order).order_by(Order.id))).scalars().all()
            for o in orders:
                s.expunge_all()
                (await s.get(Customer, o.customer_id)).name
        await e.dispose()
    asyncio.run(main())


def asyncpg_commit_per_row(url):
    import asyncio
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    async def main():
        e = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        async with AsyncSession(e) as s:
            for i in range(ROWS):
                s.add(Event(customer_id=i % 20 + 1, kind="click", amount=i))
                await s.commit()
        await e.dispose()
    asyncio.run(main())
