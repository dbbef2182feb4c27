print("cardsync")
