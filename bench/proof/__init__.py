"""What tests/proof asserts and the bench scripts print: the operations whose SQL is pinned
(operations), how their statements are captured (statements), and the pages whose query count must
not grow (pages). Plain data builders on the ORM, so that neither side depends on the other."""
